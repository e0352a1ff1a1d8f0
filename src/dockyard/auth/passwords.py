"""Password hashing with argon2id, constant-time checks, and a short-lived cache of successful
checks so that Basic credentials sent on every request do not cost an argon2 hash each time."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): argon2-cffi's default of 64 MiB
# per check would make every login spike the server's memory by that much.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so that the answer takes as long either way.
# A constant (the hash of a random string), so importing this module costs no hashing.
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$7d5bm6Z1n4m2k1wq0B3HhQ3bV0B3Q5c8v1z3Y5m6n7o"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


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
