"""Password hashing with argon2id, constant-time checks, and a short-lived cache of successful
checks so that Basic credentials sent on every request do not cost an argon2 hash each time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time

from argon2 import Parameters, PasswordHasher, extract_parameters, low_level
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): argon2-cffi's default of 64 MiB
# per check would make every login spike the server's memory by that much.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so that the answer takes as long either way.
# A constant (the hash of a random string), so importing this module costs no hashing.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$7d5bm6Z1n4m2k1wq0B3HhQ3bV0B3Q5c8v1z3Y5m6n7o"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _parse(password_hash: str | None) -> tuple[Parameters, bytes, bytes] | None:
    """(parameters, salt, digest) of an argon2 hash in PHC string format, or None."""
    if not password_hash or not password_hash.startswith("$argon2"):
        return None
    parts = password_hash.split("$")
    if len(parts) != 6:
        return None
    try:
        salt, digest = (base64.b64decode(p + "=" * (-len(p) % 4), validate=True) for p in parts[4:])
        return extract_parameters(password_hash), salt, digest
    except (binascii.Error, ValueError, InvalidHashError):
        return None


def argon2_salt(password_hash: str | None) -> bytes | None:
    """The salt of an argon2 hash, or None when it is not one."""
    parsed = _parse(password_hash)
    return parsed[1] if parsed else None


def hash_password_like(password: str, other: str | None) -> str:
    """Hash `password` with the salt of `other`, another password hash of the same user (a fresh
    salt when there is none). A user's account and registry passwords share one salt so that
    checking a password against both costs one argon2 computation, not two: a wrong password
    must take as long for a user with a registry password as for one without, or for no user."""
    salt = argon2_salt(other) or os.urandom(16)
    return low_level.hash_secret(password.encode(), salt, time_cost=_hasher.time_cost, memory_cost=_hasher.memory_cost,
                                 parallelism=_hasher.parallelism, hash_len=_hasher.hash_len, type=_hasher.type).decode()


def _raw(password: bytes, salt: bytes, params: Parameters) -> bytes:
    """One argon2 computation (the expensive part of a check)."""
    return low_level.hash_secret_raw(password, salt, time_cost=params.time_cost, memory_cost=params.memory_cost,
                                     parallelism=params.parallelism, hash_len=params.hash_len, type=params.type,
                                     version=params.version)


def verify_any(password_hashes: list[str], password: str) -> int | None:
    """The index of the first hash `password` matches, or None. Hashes sharing salt and parameters
    cost one argon2 computation together; no hash at all costs one (against a dummy), so the
    answer takes as long for an unknown user as for a wrong password."""
    if not password_hashes:
        verify_password(None, password)
        return None
    secret = password.encode()
    computed: dict[tuple[object, ...], bytes] = {}
    found = None
    for index, stored in enumerate(password_hashes):
        parsed = _parse(stored)
        if parsed is None:
            ok = verify_password(stored, password)  # not an argon2 hash this module can read
        else:
            params, salt, digest = parsed
            key = (params.type, params.version, params.time_cost, params.memory_cost, params.parallelism,
                   params.hash_len, salt)
            if key not in computed:
                computed[key] = _raw(secret, salt, params)
            ok = hmac.compare_digest(computed[key], digest)
        if ok and found is None:
            found = index
    return found


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time verification; a missing hash still costs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """Remembers (user, password hash, password) triples that verified, for `ttl` seconds.

    Keys are HMACs under a per-process random key, so the cache never holds a password. The
    stored password hash is part of the key: a password change invalidates at once.
    """

    def __init__(self, ttl: float = 60.0, max_entries: int = 10000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = os.urandom(32)
        self._entries: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _k(self, username: str, password_hash: str, password: str) -> bytes:
        msg = f"{username}\0{password_hash}\0{password}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def check(self, username: str, password_hash: str, password: str) -> bool:
        expires = self._entries.get(self._k(username, password_hash, password))
        return expires is not None and expires > time.monotonic()

    def remember(self, username: str, password_hash: str, password: str) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._k(username, password_hash, password)] = time.monotonic() + self.ttl
