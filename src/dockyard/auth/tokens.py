"""Docker registry tokens: ES256-signed JWTs with an `access` claim, as Docker Hub and
distribution issue them, refresh tokens for the OAuth2 refresh-token grant, and management tokens
for /api/v1.

The three kinds never stand in for one another: a refresh token says `typ: refresh`, and a
management token has its own audience (`SERVICE:management`), so neither verifies as a registry
access token, and a registry access token (whatever its `access` claim) never verifies as a
management token. Refresh and management tokens carry `cred`, a fingerprint of the credential
they were issued for (see AuthService.fingerprint): once that credential changes they are refused.

The signing key (EC P-256) is made on first start and kept at DATA/keys/token-signing.pem (auth/keyfiles.py).
Verified access tokens are cached by their exact text until they expire, so a client sending
the same token on every request pays for one signature check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth.bounded import BoundedCache
from dockyard.auth.keyfiles import create_once
from dockyard.core.scopes import Scope


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key in `path`, made there first when the file does not exist (nodes sharing
    the file agree on one key: auth/keyfiles.py)."""

    def make() -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    pem = create_once(path, make)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def _key_id(key: ec.EllipticCurvePrivateKey) -> str:
    # RFC 7638 JWK thumbprint of the public key.
    nums = key.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
    jwk = json.dumps({"crv": "P-256", "kty": "EC", "x": b64(nums.x), "y": b64(nums.y)}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class AccessToken:
    subject: str
    access: frozenset[tuple[str, str, str]]  # (type, name, action)
    expires_at: float
    temp_id: str | None = None  # the temporary password it was issued for, if any

    def allows(self, type_: str, name: str, action: str) -> bool:
        return (type_, name, action) in self.access or (type_, name, "*") in self.access


CACHED_TOKEN_MAX_CHARS = 4096  # ours are ~700; longer ones are verified each time
VERIFIED_TOKENS_MAX = 10_000  # ~10 MiB at most (tokens of up to 4 KiB), enough for every client of a busy registry


class InvalidToken(Exception):
    pass


# Management tokens are asked for explicitly and live at most this long: a management credential
# should not outlive a short session, whatever auth.token_ttl_seconds says for registry tokens.
MANAGEMENT_TTL_MAX = 300


@dataclass(frozen=True, slots=True)
class Grant:
    """What a refresh or management token was issued for: the subject, the temporary password
    (if any), the fingerprint of the credential, and (management tokens) whether it was the
    account password."""

    subject: str
    temp_id: str | None
    credential: str
    account_login: bool = False


class TokenService:
    def __init__(self, key: ec.EllipticCurvePrivateKey, issuer: str, service: str, ttl: int, refresh_ttl: int) -> None:
        self._key = key
        self._public = key.public_key()
        self.kid = _key_id(key)
        self.issuer = issuer
        self.service = service
        self.ttl = ttl
        self.refresh_ttl = refresh_ttl
        # Keyed by the token text (~700 bytes; hashing it again per request cost more than the
        # rest of the lookup), bounded in entries and in the length of what it keeps: every
        # anonymous caller can mint tokens, so a stream of new ones costs constant memory.
        self._cache: BoundedCache[str, AccessToken] = BoundedCache(VERIFIED_TOKENS_MAX)

    def issue(self, subject: str, access: list[Scope], extra: dict[str, Any] | None = None) -> tuple[str, int]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.ttl,
            "jti": secrets.token_hex(16),
            "access": [s.as_claim() for s in access],
            **(extra or {}),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid}), self.ttl

    @property
    def management_audience(self) -> str:
        return f"{self.service}:management"

    @property
    def management_ttl(self) -> int:
        return min(self.ttl, MANAGEMENT_TTL_MAX)

    def issue_refresh(self, subject: str, credential: str, temp_id: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now,
                                  "exp": now + self.refresh_ttl, "jti": secrets.token_hex(16), "typ": "refresh",
                                  "cred": credential}
        if temp_id:
            claims["tmp"] = temp_id  # checked again at every refresh: revoking it ends the refreshes
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def issue_management(self, subject: str, credential: str, temp_id: str | None, account_login: bool) -> tuple[str, int]:
        """A token for /api/v1 (and nothing else): its own audience, no `access` claim."""
        now = int(time.time())
        ttl = self.management_ttl
        claims: dict[str, Any] = {"iss": self.issuer, "sub": subject, "aud": self.management_audience, "iat": now,
                                  "nbf": now - 5, "exp": now + ttl, "jti": secrets.token_hex(16), "typ": "management",
                                  "cred": credential}
        if temp_id:
            claims["tmp"] = temp_id
        if account_login:
            claims["amr"] = "pwd"
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid}), ttl

    def issue_build(self, repository: str, build: str, ttl: int) -> str:
        """A build's push credential (the password of `docker login` as the build user): its own
        audience, for one repository, until the build's time limit is over."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": build, "aud": f"{self.service}:build", "iat": now, "nbf": now - 5,
                  "exp": now + ttl, "jti": secrets.token_hex(16), "typ": "build", "repo": repository}
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def verify_build(self, token: str) -> tuple[str, str, float]:
        """(repository, build, expiry) of a build's push credential; raises InvalidToken."""
        claims = self._decode(token, f"{self.service}:build")
        if claims.get("typ") != "build" or not isinstance(claims.get("repo"), str):
            raise InvalidToken("not a build credential")
        return claims["repo"], str(claims["sub"]), float(claims["exp"])

    def _decode(self, token: str, audience: str | None = None) -> dict[str, Any]:
        try:
            return jwt.decode(token, self._public, algorithms=["ES256"], audience=audience or self.service,
                              issuer=self.issuer, options={"require": ["exp", "iat", "sub"]}, leeway=5)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None

    def verify(self, token: str) -> AccessToken:
        """Verify an access token; raises InvalidToken (bad signature, expired, wrong audience…)."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            self._cache.pop(token)
            raise InvalidToken("token expired")
        claims = self._decode(token)
        if claims.get("typ") == "refresh":
            raise InvalidToken("a refresh token is not an access token")
        access: set[tuple[str, str, str]] = set()
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and isinstance(entry.get("actions"), list):
                for action in entry["actions"]:
                    access.add((str(entry.get("type")), str(entry.get("name")), str(action)))
        tmp = claims.get("tmp")
        result = AccessToken(subject=str(claims["sub"]), access=frozenset(access), expires_at=float(claims["exp"]),
                             temp_id=tmp if isinstance(tmp, str) else None)
        if len(token) <= CACHED_TOKEN_MAX_CHARS:
            self._cache.put(token, result)
        return result

    @staticmethod
    def _grant(claims: dict[str, Any]) -> Grant:
        tmp, cred = claims.get("tmp"), claims.get("cred")
        if not isinstance(cred, str) or not cred:
            # Issued before tokens were bound to their credential: nothing to check it against.
            raise InvalidToken("the token is not bound to a credential")
        return Grant(subject=str(claims["sub"]), temp_id=tmp if isinstance(tmp, str) else None, credential=cred,
                     account_login=claims.get("amr") == "pwd")

    def verify_refresh(self, token: str) -> Grant:
        """What a valid refresh token was issued for; raises InvalidToken."""
        claims = self._decode(token)
        if claims.get("typ") != "refresh":
            raise InvalidToken("not a refresh token")
        return self._grant(claims)

    def verify_management(self, token: str) -> Grant:
        """What a valid management token was issued for; raises InvalidToken (a registry access or
        refresh token has the registry's audience, so it fails here)."""
        claims = self._decode(token, self.management_audience)
        if claims.get("typ") != "management":
            raise InvalidToken("not a management token")
        return self._grant(claims)
