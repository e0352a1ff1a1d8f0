"""Secrets the registry must read back, encrypted at rest (pure: no I/O; the key comes from
auth/keyfiles.py).

Passwords and robot secrets are only ever compared, so the database keeps their hashes. A webhook
signing secret (and later a build's source token) must be used as it is, so it is stored
encrypted with AES-256-GCM under a key that lives outside the database (DATA/keys/secrets.key):
a copy of the database or of a backup alone does not hand out the secrets.

A sealed value is text, `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`:

- the key id (8 hex characters of the key's SHA-256) says which key sealed it, so a node started
  with another key file fails with a clear message instead of "invalid tag";
- `purpose` is bound in as associated data: a value sealed as a webhook secret does not open as
  anything else, and copying one row's ciphertext into another kind of row gains nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE = 12
_VERSION = "v1"


class SecretBoxError(Exception):
    """A sealed value that does not open with this key and purpose."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a secrets key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, value: str, purpose: str) -> str:
        """The plaintext; raises SecretBoxError when the value is malformed, was sealed with
        another key or for another purpose, or was changed."""
        version, _, rest = value.partition(".")
        kid, _, data = rest.partition(".")
        if version != _VERSION or not data:
            raise SecretBoxError("not a sealed secret")
        if kid != self.key_id:
            raise SecretBoxError(f"sealed with another secrets key (id {kid}, this node's is {self.key_id}): "
                                 "every node must use the same auth.secrets_key_file")
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode()).decode()
        except (ValueError, InvalidTag, UnicodeDecodeError):
            raise SecretBoxError("the sealed secret does not open (changed, or sealed for another purpose)") from None
