"""Key files made on first start and shared by every node of a registry: the token signing key
(auth/tokens.py) and the secrets key (core/secretbox.py).

Nodes sharing a file (`auth.signing_key_file`, `auth.secrets_key_file` on a shared volume) may
start at the same moment: each writes its new key to a temporary file and links it into place,
which succeeds only if no other node's is there yet (link(2) never replaces); then everyone reads
the one that won. Files are 0600.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from dockyard.core.secretbox import KEY_BYTES


def create_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of `path`, written there first (`make()`) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another node made it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def load_or_create_secrets_key(path: Path) -> bytes:
    """The 256-bit secrets key, kept as one line of base64 (easy to copy to another node)."""
    text = create_once(path, lambda: base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} is not a secrets key (one line of base64 of {KEY_BYTES} bytes)")
    return key
