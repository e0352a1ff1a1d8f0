"""Authentication: who is calling (Basic credentials or a Bearer token), what they may do, and
token issuing."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timezone
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.auth import policy
from dockyard.auth.bounded import BoundedCache
from dockyard.auth.passwords import VerifiedCache, verify_any
from dockyard.auth.policy import Principal
from dockyard.auth.throttle import Attempt, LoginThrottle, Throttled
from dockyard.auth.tokens import AccessToken, Grant, InvalidToken, TokenService
from dockyard.core.errors import TooManyRequests
from dockyard.core.scopes import Scope
from dockyard.meta.credentials import CredentialStore, Robot, secret_hash
from dockyard.meta.db import aware, utcnow
from dockyard.meta.namespaces import NamespaceStore
from dockyard.meta.users import User, UserStore

TEMP_PREFIX = "dkt_"  # temporary passwords look like dkt_<id>_<secret>
ROBOT_PREFIX = "robot$"  # robot accounts log in as robot$<namespace>+<name>
BUILD_USER = "dockyard-build"  # a build's push credential logs in as this user (registry/builds.py)
ACCESS_CACHE_SECONDS = 5.0
ACCESS_CACHE_ENTRIES = 50_000
ROLES_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a /v2 endpoint: a principal known by credentials, the holder of a token,
    or nobody (anonymous). `resolve` answers for the first and the last."""

    username: str | None
    principal: Principal | None = None
    token: AccessToken | None = None
    resolve: Callable[[Principal | None, Scope], tuple[str, ...]] | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal is not None or self.token is not None

    def may(self, type_: str, name: str, action: str) -> bool:
        if self.token is not None:
            return self.token.allows(type_, name, action)
        if self.resolve is None or (type_ != "repository" and self.principal is None):
            return False  # anonymous callers list the catalog with a (possibly anonymous) token
        return action in self.resolve(self.principal, Scope(type_, name, (action,)))


class AuthService:
    def __init__(self, users: UserStore, tokens: TokenService, namespaces: NamespaceStore,
                 credentials: CredentialStore, account_password_for_registry: bool = True,
                 access_cache_seconds: float = ACCESS_CACHE_SECONDS) -> None:
        # Decisions are cached only where every change is seen (one process): another node's
        # change of roles or visibility would otherwise take effect here up to that long later.
        self.access_cache_seconds = access_cache_seconds
        self.users = users
        self.tokens = tokens
        self.namespaces = namespaces
        self.credentials = credentials
        self.account_password_for_registry = account_password_for_registry
        self._verified = VerifiedCache()
        self.throttle = LoginThrottle()
        # Bounded, evicting the least recently used: anonymous callers choose the names.
        self._access: BoundedCache[tuple[str, str], tuple[float, frozenset[str]]] = BoundedCache(ACCESS_CACHE_ENTRIES)
        self._roles: BoundedCache[str, tuple[float, dict[str, str]]] = BoundedCache(ROLES_CACHE_ENTRIES)

    # -- who ------------------------------------------------------------------------------------
    def login(self, username: str, password: str, remote: str | None, account_only: bool = False) -> Principal | None:
        """check_password (or, with `account_only`, the account password alone: the management
        API) behind the throttle: raises TooManyRequests after repeated failures."""
        attempt: Attempt | None = None

        def reserve() -> None:  # right before the argon2 computation, and only then (see throttle.begin)
            nonlocal attempt
            attempt = self.throttle.begin(username, remote)

        outcome: bool | None = None
        try:
            self.throttle.check(username, remote)
            check = self.check_account_password if account_only else self.check_password
            principal = check(username, password, reserve)
            outcome = principal is not None
        except Throttled as exc:
            wait = exc.retry_after
            raise TooManyRequests(f"too many failed logins for {username[:64]}; try again in {wait} s", {"retry_after": wait}) from None
        finally:
            if attempt is not None:
                self.throttle.end(attempt, outcome)
            elif outcome is not None:
                self.throttle.record(username, remote, outcome)
        return principal

    def check_password(self, username: str, password: str, before_hashing: Callable[[], None] | None = None) -> Principal | None:
        """The principal these `docker login` credentials stand for, or None (constant time for
        unknown users and wrong passwords). `before_hashing` runs before an argon2 computation."""
        if username.startswith(ROBOT_PREFIX):
            return self._robot_login(username, password)
        if username == BUILD_USER:
            return self._build_login(password)
        user = self.users.get(username)
        if password.startswith(TEMP_PREFIX):
            return self._temp_login(user, password)
        # Which password matched matters: only the account password may manage (account_login).
        candidates: list[tuple[str, bool]] = []
        if user is not None and user.registry_password_hash:
            candidates.append((user.registry_password_hash, False))
        if user is not None and self.account_password_for_registry:
            candidates.append((user.password_hash, True))
        return self._match(user, password, candidates, before_hashing)

    def check_account_password(self, username: str, password: str,
                               before_hashing: Callable[[], None] | None = None) -> Principal | None:
        """The console/API login: the account password only."""
        user = self.users.get(username)
        return self._match(user, password, [(user.password_hash, True)] if user is not None else [], before_hashing)

    def _match(self, user: User | None, password: str, candidates: list[tuple[str, bool]],
               before_hashing: Callable[[], None] | None) -> Principal | None:
        """The user as a principal if `password` matches one of the stored hashes (hash, is the
        account password); successful argon2 checks are remembered for a minute."""
        if (remembered := self._remembered(user, password, candidates)) is not None:
            return remembered
        if before_hashing is not None:
            before_hashing()  # may wait for a parallel request with the same password: look again
            if (remembered := self._remembered(user, password, candidates)) is not None:
                return remembered
        # One argon2 computation whatever the candidates (a user's hashes share a salt, no
        # candidate costs a dummy one): how long a wrong password takes says nothing of the user.
        found = verify_any([stored for stored, _ in candidates], password)
        if found is None or user is None:
            return None
        stored, is_account = candidates[found]
        self._verified.remember(user.username, stored, password)
        return None if user.disabled else Principal(user=user, account_login=is_account)

    def _remembered(self, user: User | None, password: str, candidates: list[tuple[str, bool]]) -> Principal | None:
        if user is not None and not user.disabled:
            for stored, is_account in candidates:
                if self._verified.check(user.username, stored, password):
                    return Principal(user=user, account_login=is_account)
        return None

    def _robot_login(self, username: str, secret: str) -> Principal | None:
        namespace, sep, name = username[len(ROBOT_PREFIX):].partition("+")
        robot = self.credentials.get_robot(namespace, name) if sep else None
        expected = robot.secret_hash if robot is not None else "0" * 64
        ok = hmac.compare_digest(expected, secret_hash(secret))
        if robot is None or not ok or robot.disabled or (robot.expires_at is not None and aware(robot.expires_at) <= utcnow()):
            return None
        return Principal(robot=robot)

    def build_credential(self, repository: str, ttl: int, build_id: int | None = None) -> tuple[str, str]:
        """A build's push credential: pull and push on `repository` alone, for `ttl` seconds. Its
        robot is named after the build (build-ID-RANDOM), as the audit log shows its pushes."""
        name = f"build-{build_id}-{secrets.token_hex(3)}" if build_id is not None else f"build-{secrets.token_hex(4)}"
        return BUILD_USER, self.tokens.issue_build(repository, name, ttl)

    def _build_login(self, password: str) -> Principal | None:
        """The principal of a build's push credential: a robot of the repository's namespace that
        exists only in the credential (no row: nothing to steal from the database, nothing to
        revoke but by its expiry, which is the build's time limit)."""
        try:
            repository, build, expires = self.tokens.verify_build(password)
        except InvalidToken:
            return None
        namespace = repository.split("/", 1)[0]
        now = utcnow()
        # Named after the credential (build-<random>): decisions cached per principal name never
        # pass from one build's credential to another's.
        robot = Robot(id=0, namespace=namespace, name=build, description="a build's push credential",
                      permissions=[{"repositories": repository, "actions": ["pull", "push"]}], disabled=False,
                      created_at=now, expires_at=datetime.fromtimestamp(expires, timezone.utc), rotated_at=None,
                      last_used_at=None, secret_hash="")
        return Principal(robot=robot)

    def _temp_login(self, user: User | None, password: str) -> Principal | None:
        _, _, rest = password.partition(TEMP_PREFIX)
        temp_id, _, _ = rest.partition("_")
        temp = self.credentials.get_temp(temp_id) if temp_id.isalnum() and len(temp_id) <= 32 else None
        expected = temp.secret_hash if temp is not None else "0" * 64
        ok = hmac.compare_digest(expected, secret_hash(password))
        if (not ok or temp is None or user is None or user.disabled or temp.username != user.username
                or temp.revoked_at is not None or aware(temp.expires_at) <= utcnow()):
            return None
        return Principal(user=user, temp=temp)

    def caller_from_token(self, token: str) -> Caller:
        """Raises InvalidToken."""
        access = self.tokens.verify(token)
        return Caller(username=access.subject or None, token=access, resolve=self.allowed)

    def caller_from_principal(self, principal: Principal | None) -> Caller:
        return Caller(username=principal.name if principal else None, principal=principal, resolve=self.allowed)

    def principal_from_subject(self, subject: str, temp_id: str | None = None, account_login: bool = False) -> Principal | None:
        """Rebuild the principal a token was issued to, if it is still valid: a disabled user or
        robot, an expired robot, or a revoked or expired temporary password gives None."""
        if not subject:
            return None
        now = utcnow()
        if subject.startswith(ROBOT_PREFIX):
            namespace, _, name = subject[len(ROBOT_PREFIX):].partition("+")
            robot = self.credentials.get_robot(namespace, name)
            if robot is None or robot.disabled or (robot.expires_at is not None and aware(robot.expires_at) <= now):
                return None
            return Principal(robot=robot)
        user = self.users.get(subject)
        if user is None or user.disabled:
            return None
        if temp_id is None:
            return Principal(user=user, account_login=account_login)
        temp = self.credentials.get_temp(temp_id)
        if temp is None or temp.username != user.username or temp.revoked_at is not None or aware(temp.expires_at) <= now:
            return None
        return Principal(user=user, temp=temp)

    # -- what -----------------------------------------------------------------------------------
    def allowed(self, principal: Principal | None, scope: Scope) -> tuple[str, ...]:
        """What of `scope` the principal may do (cached for a few seconds per principal and name)."""
        if scope.type == "registry" and scope.name == "catalog":
            return ("*",) if "*" in scope.actions else ()
        if scope.type != "repository":
            return ()
        key = (principal.name + (f"#{principal.temp.id}" if principal and principal.temp else "") if principal else "", scope.name)
        now = time.monotonic()
        hit = self._access.get(key)
        if hit is None or hit[0] < now:
            facts = self.namespaces.facts(scope.name)
            role = None
            if principal is not None and principal.user is not None and not principal.user.is_admin:
                role = self._roles_of(principal.user.username, now).get(facts.namespace)
            actions = frozenset(policy.repository_actions(principal, role, facts))
            hit = (now + self.access_cache_seconds, actions)
            self._access.put(key, hit)
        return policy.grant_actions(scope, hit[1])

    def _roles_of(self, username: str, now: float) -> dict[str, str]:
        # One query per user, not per repository: a catalog page asks for many repositories.
        hit = self._roles.get(username)
        if hit is None or hit[0] < now:
            hit = (now + self.access_cache_seconds, self.namespaces.roles_of(username))
            self._roles.put(username, hit)
        return hit[1]

    def forget_access(self) -> None:
        """Drop cached decisions (after a change of roles, visibility or credentials)."""
        self._access.clear()
        self._roles.clear()

    def visible(self, principal: Principal | None, names: list[str]) -> list[str]:
        """The repositories of `names` the principal may pull (the catalog's filter)."""
        return [n for n in names if "pull" in self.allowed(principal, Scope("repository", n, ("pull",)))]

    # -- tokens ---------------------------------------------------------------------------------
    def issue(self, principal: Principal | None, scopes: list[Scope]) -> tuple[str, int, list[Scope]]:
        granted = []
        for scope in scopes:
            actions = self.allowed(principal, scope)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        extra: dict[str, str] = {}
        if principal is not None and principal.temp is not None:
            extra["tmp"] = principal.temp.id
        # No `amr` any more: a registry token is never a management credential (issue_management).
        token, ttl = self.tokens.issue(principal.name if principal else "", granted, extra)
        return token, ttl, granted

    @staticmethod
    def fingerprint(principal: Principal) -> str:
        """What binds refresh and management tokens to their credential: a digest of its stored
        hash, which changes whenever the credential does. A user's covers both passwords (a change
        of either ends every refresh token of theirs), a robot's its secret (rotated, or a new robot
        of the same name), a temporary password's its own secret."""
        if principal.robot is not None:
            material = "robot\0" + principal.robot.secret_hash
        elif principal.temp is not None:
            material = "temp\0" + principal.temp.secret_hash
        else:
            assert principal.user is not None
            material = "user\0" + principal.user.password_hash + "\0" + (principal.user.registry_password_hash or "")
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def issue_refresh(self, principal: Principal) -> str:
        return self.tokens.issue_refresh(principal.name, self.fingerprint(principal),
                                         principal.temp.id if principal.temp else None)

    def _granted_principal(self, grant: Grant) -> Principal | None:
        principal = self.principal_from_subject(grant.subject, grant.temp_id, grant.account_login)
        if principal is None or not hmac.compare_digest(self.fingerprint(principal), grant.credential):
            return None  # disabled, revoked, expired, or the credential changed since
        return principal

    def principal_from_refresh(self, refresh_token: str) -> Principal | None:
        try:
            grant = self.tokens.verify_refresh(refresh_token)
        except InvalidToken:
            return None
        # Refresh tokens carry no `amr`: what they mint never stands for the account password.
        return self._granted_principal(grant)

    def issue_management(self, principal: Principal) -> tuple[str, int]:
        """A short-lived token for /api/v1, asked for with `scope=management` at /auth/token."""
        return self.tokens.issue_management(principal.name, self.fingerprint(principal),
                                            principal.temp.id if principal.temp else None, principal.account_login)

    def principal_from_management_token(self, token: str) -> Principal | None:
        """The principal of a management token, or None when its credential is no longer valid
        or has changed; raises InvalidToken (registry access and refresh tokens included)."""
        return self._granted_principal(self.tokens.verify_management(token))
