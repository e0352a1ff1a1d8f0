"""The management use-cases: who may change what, the change itself, and its audit record.

Every method takes the acting `Actor` first and raises the errors of `management.errors`
(never HTTP ones). Rules:

- Namespaces: any user may create one and becomes its owner; owners and administrators change,
  delete and manage members and robots; members (and everyone, for a public namespace) read it.
- Repositories: owners, developers and administrators create and edit them; owners and
  administrators delete them; anyone who may pull one reads it.
- Robots and temporary-password logins may only read (`Actor.read_only`).
- After a change of roles, visibility, credentials or users the cached access decisions are
  dropped (`AuthService.forget_access`), so the next token request sees the change.

Audit targets: a namespace `ns`; a repository `ns/app`; a robot `robot$ns+name`; a user or
their credentials `user:NAME`. Members are recorded on the namespace, with the user in `detail`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from dockyard.auth.passwords import hash_password
from dockyard.auth.policy import Principal
from dockyard.auth.service import AuthService
from dockyard.core.access import ROLES, namespace_of
from dockyard.core.errors import NameInvalid
from dockyard.core.names import validate_name, validate_namespace
from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from dockyard.management.queries import ManagementQueries
from dockyard.meta.audit import AuditEvent, AuditStore
from dockyard.meta.credentials import CredentialStore, Robot, TempPassword
from dockyard.meta.db import utcnow
from dockyard.meta.namespaces import Member, Namespace, NamespaceStore, Repository
from dockyard.meta.users import User, UserStore

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MIN_TTL = 60
MAX_TTL = 366 * 86400
RESERVED_NAMESPACES = frozenset({"library"})  # one-component names live here: administrators only
USERNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._@-]{0,62}[A-Za-z0-9])?")
ROBOT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
MAX_PATTERN = 255


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling the management API, and from where."""

    principal: Principal | None
    remote: str | None = None

    @property
    def name(self) -> str:
        return self.principal.name if self.principal else ""

    @property
    def is_admin(self) -> bool:
        return self.principal is not None and self.principal.is_admin

    @property
    def user(self) -> User | None:
        return self.principal.user if self.principal else None

    @property
    def read_only(self) -> bool:
        """Robots, temporary passwords and the fixed registry password may read, never change
        anything: only a login with the account password may (Principal.account_login)."""
        return self.principal is None or not self.principal.account_login


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    namespace: Namespace
    role: str | None  # the caller's


@dataclass(frozen=True, slots=True)
class TagInfo:
    name: str
    digest: str
    updated_at: datetime
    pulls: int
    last_pulled_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewTempPassword:
    temp: TempPassword
    password: str  # shown once


@dataclass(frozen=True, slots=True)
class NewRobotSecret:
    robot: Robot
    secret: str  # shown once


@dataclass(frozen=True, slots=True)
class WhoAmI:
    username: str
    kind: str  # user | robot
    is_admin: bool
    read_only: bool
    temp_password_id: str | None
    namespaces: dict[str, str] = field(default_factory=dict)  # namespace -> role


def limit_of(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ManagementService:
    def __init__(self, *, users: UserStore, namespaces: NamespaceStore, credentials: CredentialStore,
                 audit: AuditStore, auth: AuthService, queries: ManagementQueries, temp_password_ttl: int,
                 repositories_deleted: Callable[[list[str]], None] = lambda names: None,
                 logins_ended: Callable[[str], object] = lambda username: None) -> None:
        self.users = users
        self.namespaces = namespaces
        self.credentials = credentials
        self.audit = audit
        self.auth = auth
        self.queries = queries
        self.temp_password_ttl = temp_password_ttl
        # Drops the caches of the registry that remember repositories (wired by app.py).
        self.repositories_deleted = repositories_deleted
        # Ends a user's console sessions when their account password changes or they are disabled.
        self.logins_ended = logins_ended

    # -- helpers ----------------------------------------------------------------------------------
    def _record(self, actor: Actor, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        self.audit.record(actor.name, action, target, detail, actor.remote)

    @staticmethod
    def _authenticated(actor: Actor) -> Principal:
        if actor.principal is None:
            raise Unauthenticated("authentication required")
        return actor.principal

    def _writer(self, actor: Actor) -> User:
        """The user allowed to change things: not a robot, not a temporary password."""
        self._authenticated(actor)
        if actor.read_only or actor.user is None:
            raise Forbidden("robot accounts, temporary passwords and registry passwords may only read; "
                            "sign in with the account password to change things")
        return actor.user

    def _role(self, actor: Actor, namespace: str) -> str | None:
        user = actor.user
        if user is None:
            return None
        return self.namespaces.roles_of(user.username).get(namespace)

    def _namespace(self, name: str) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None:
            raise NotFound(f"namespace {name!r} not found")
        return ns

    def _can_read_namespace(self, actor: Actor, ns: Namespace, roles: dict[str, str] | None = None) -> bool:
        if ns.public or actor.is_admin:
            return True
        principal = actor.principal
        if principal is None:
            return False
        if principal.robot is not None:
            return principal.robot.namespace == ns.name
        return (roles.get(ns.name) if roles is not None else self._role(actor, ns.name)) is not None

    def _require_owner(self, actor: Actor, namespace: str) -> Namespace:
        user = self._writer(actor)
        ns = self._namespace(namespace)
        if not user.is_admin and self._role(actor, namespace) != "owner":
            raise Forbidden(f"only an owner of {namespace!r} or an administrator may do that")
        return ns

    def _require_admin(self, actor: Actor) -> User:
        user = self._writer(actor)
        if not user.is_admin:
            raise Forbidden("administrators only")
        return user

    @staticmethod
    def _validate_namespace(name: str) -> str:
        try:
            return validate_namespace(name)
        except NameInvalid as exc:
            raise Invalid(exc.message) from None

    @staticmethod
    def _validate_repository(name: str) -> str:
        try:
            return validate_name(name)
        except NameInvalid as exc:
            raise Invalid(exc.message) from None

    @staticmethod
    def _validate_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise Invalid(f"a password has at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise Invalid(f"a password has at most {MAX_PASSWORD} characters")

    @staticmethod
    def _validate_actions(actions: Iterable[str]) -> list[str]:
        out = []
        for action in actions:
            if action not in ALL_REPOSITORY_ACTIONS:
                raise Invalid(f"unknown action {action!r}: use {', '.join(ALL_REPOSITORY_ACTIONS)}")
            if action not in out:
                out.append(action)
        if not out:
            raise Invalid("at least one action is needed")
        return out

    @staticmethod
    def _validate_pattern(pattern: str) -> str:
        if not pattern or len(pattern) > MAX_PATTERN or any(c.isspace() for c in pattern) or ".." in pattern:
            raise Invalid(f"invalid repository pattern {pattern[:100]!r}")
        return pattern

    # -- who am I ---------------------------------------------------------------------------------
    def whoami(self, actor: Actor) -> WhoAmI:
        principal = self._authenticated(actor)
        if principal.robot is not None:
            return WhoAmI(username=principal.name, kind="robot", is_admin=False, read_only=True, temp_password_id=None,
                          namespaces={principal.robot.namespace: "robot"})
        assert principal.user is not None
        return WhoAmI(username=principal.name, kind="user", is_admin=principal.is_admin, read_only=actor.read_only,
                      temp_password_id=principal.temp.id if principal.temp else None,
                      namespaces=self.namespaces.roles_of(principal.user.username))

    # -- namespaces -------------------------------------------------------------------------------
    def list_namespaces(self, actor: Actor, after: str | None, limit: int | None) -> Page[NamespaceInfo]:
        self._authenticated(actor)
        limit = limit_of(limit)
        roles = self.namespaces.roles_of(actor.user.username) if actor.user else {}
        found: list[Namespace] = []
        cursor = after
        while len(found) <= limit:
            chunk = self.namespaces.list(None, cursor, MAX_LIMIT)
            found += [ns for ns in chunk if self._can_read_namespace(actor, ns, roles)]
            if len(chunk) < MAX_LIMIT:
                break
            cursor = chunk[-1].name
        more = len(found) > limit
        found = found[:limit]
        return Page([NamespaceInfo(ns, roles.get(ns.name)) for ns in found], found[-1].name if more else None)

    def create_namespace(self, actor: Actor, name: str, description: str | None = None, public: bool = False,
                         auto_create: bool = True) -> NamespaceInfo:
        user = self._writer(actor)
        self._validate_namespace(name)
        if name in RESERVED_NAMESPACES and not user.is_admin:
            raise Forbidden(f"namespace {name!r} is reserved for administrators")
        if self.namespaces.get(name) is not None:
            raise Conflict(f"namespace {name!r} exists already")
        try:
            ns = self.namespaces.create(name, description, public, auto_create)
        except Exception:
            if self.namespaces.get(name) is not None:  # lost a race with another create
                raise Conflict(f"namespace {name!r} exists already") from None
            raise
        self.namespaces.set_member(name, user.username, "owner")
        self.auth.forget_access()
        self._record(actor, "namespace.create", name, {"public": public, "auto_create": auto_create})
        return NamespaceInfo(ns, "owner")

    def get_namespace(self, actor: Actor, name: str) -> NamespaceInfo:
        self._authenticated(actor)
        ns = self._namespace(name)
        if not self._can_read_namespace(actor, ns):
            raise NotFound(f"namespace {name!r} not found")
        return NamespaceInfo(ns, self._role(actor, name))

    def update_namespace(self, actor: Actor, name: str, **fields: Any) -> NamespaceInfo:
        self._require_owner(actor, name)
        changes = {k: v for k, v in fields.items() if k in ("description", "public", "auto_create")}
        for key in ("public", "auto_create"):
            if key in changes and not isinstance(changes[key], bool):
                raise Invalid(f"{key} must be true or false")
        if changes:
            self.namespaces.update(name, **changes)
            self.auth.forget_access()
            self._record(actor, "namespace.update", name, changes)
        return NamespaceInfo(self._namespace(name), self._role(actor, name))

    def delete_namespace(self, actor: Actor, name: str) -> list[str]:
        self._require_owner(actor, name)
        removed = self.namespaces.delete(name)
        self.repositories_deleted(removed)
        self.auth.forget_access()
        self._record(actor, "namespace.delete", name, {"repositories": removed} if removed else None)
        return removed

    # -- members ------------------------------------------------------------------------------------
    def list_members(self, actor: Actor, namespace: str) -> list[Member]:
        self._authenticated(actor)
        ns = self._namespace(namespace)
        if not (actor.is_admin or self._role(actor, namespace) is not None):
            if not self._can_read_namespace(actor, ns):
                raise NotFound(f"namespace {namespace!r} not found")
            raise Forbidden(f"only members of {namespace!r} see its members")
        return self.namespaces.members(namespace)

    def set_member(self, actor: Actor, namespace: str, username: str, role: str) -> Member:
        self._require_owner(actor, namespace)
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r}: use {', '.join(ROLES)}")
        if self.users.get(username) is None:
            raise NotFound(f"user {username!r} not found")
        current = {m.username: m.role for m in self.namespaces.members(namespace)}
        if current.get(username) == "owner" and role != "owner" and self.namespaces.count_owners(namespace) <= 1:
            raise Conflict(f"{username!r} is the last owner of {namespace!r}; add another owner first")
        self.namespaces.set_member(namespace, username, role)
        self.auth.forget_access()
        self._record(actor, "member.set", namespace, {"username": username, "role": role, "previous": current.get(username)})
        return next(m for m in self.namespaces.members(namespace) if m.username == username)

    def remove_member(self, actor: Actor, namespace: str, username: str) -> None:
        self._require_owner(actor, namespace)
        current = {m.username: m.role for m in self.namespaces.members(namespace)}
        if username not in current:
            raise NotFound(f"{username!r} is not a member of {namespace!r}")
        if current[username] == "owner" and self.namespaces.count_owners(namespace) <= 1:
            raise Conflict(f"{username!r} is the last owner of {namespace!r}; add another owner first")
        self.namespaces.remove_member(namespace, username)
        self.auth.forget_access()
        self._record(actor, "member.remove", namespace, {"username": username, "role": current[username]})

    # -- repositories -----------------------------------------------------------------------------
    def _may_pull(self, actor: Actor, names: list[str]) -> list[str]:
        if actor.is_admin:
            return names
        return self.auth.visible(actor.principal, names)

    def list_repositories(self, actor: Actor, namespace: str | None, search: str | None, after: str | None,
                          limit: int | None) -> Page[Repository]:
        self._authenticated(actor)
        limit = limit_of(limit)
        if namespace is not None:
            self._validate_namespace(namespace)
        found: list[Repository] = []
        cursor = after
        while len(found) <= limit:
            chunk = self.namespaces.repositories(namespace, search or None, cursor, MAX_LIMIT)
            allowed = set(self._may_pull(actor, [r.name for r in chunk]))
            found += [r for r in chunk if r.name in allowed]
            if len(chunk) < MAX_LIMIT:
                break
            cursor = chunk[-1].name
        more = len(found) > limit
        found = found[:limit]
        return Page(found, found[-1].name if more else None)

    def _visible_repository(self, actor: Actor, name: str) -> Repository:
        self._authenticated(actor)
        self._validate_repository(name)
        repo = self.queries.repository(name)
        if repo is None or not self._may_pull(actor, [name]):
            raise NotFound(f"repository {name!r} not found")
        return repo

    def get_repository(self, actor: Actor, name: str) -> Repository:
        return self._visible_repository(actor, name)

    def _require_role(self, actor: Actor, namespace: str, roles: tuple[str, ...], what: str) -> User:
        user = self._writer(actor)
        if user.is_admin:
            return user
        role = self._role(actor, namespace)
        if role not in roles:
            raise Forbidden(f"only {' or '.join(roles)}s of {namespace!r} or administrators may {what}")
        return user

    @staticmethod
    def _validate_visibility(visibility: str | None) -> str | None:
        if visibility not in (None, "public", "private"):
            raise Invalid("visibility is public, private or null (inherit the namespace's)")
        return visibility

    def create_repository(self, actor: Actor, name: str, summary: str | None = None, description: str | None = None,
                          visibility: str | None = None) -> Repository:
        self._writer(actor)
        self._validate_repository(name)
        self._validate_visibility(visibility)
        namespace = namespace_of(name)
        self._namespace(namespace)
        self._require_role(actor, namespace, ("owner", "developer"), "create repositories")
        if not self.namespaces.create_repository(name, summary, description, visibility):
            raise Conflict(f"repository {name!r} exists already")
        self.auth.forget_access()
        self._record(actor, "repository.create", name, {"visibility": visibility} if visibility else None)
        repo = self.queries.repository(name)
        assert repo is not None
        return repo

    def update_repository(self, actor: Actor, name: str, **fields: Any) -> Repository:
        self._writer(actor)
        self._validate_repository(name)
        changes = {k: v for k, v in fields.items() if k in ("summary", "description", "visibility")}
        if "visibility" in changes:
            self._validate_visibility(changes["visibility"])
        if self.queries.repository(name) is None:
            raise NotFound(f"repository {name!r} not found")
        self._require_role(actor, namespace_of(name), ("owner", "developer"), "change repositories")
        if changes:
            self.namespaces.update_repository(name, **changes)
            if "visibility" in changes:
                self.auth.forget_access()
            self._record(actor, "repository.update", name, changes)
        repo = self.queries.repository(name)
        if repo is None:
            raise NotFound(f"repository {name!r} not found")
        return repo

    def delete_repository(self, actor: Actor, name: str) -> None:
        self._writer(actor)
        self._validate_repository(name)
        if self.queries.repository(name) is None:
            raise NotFound(f"repository {name!r} not found")
        self._require_role(actor, namespace_of(name), ("owner",), "delete repositories")
        if not self.namespaces.delete_repository(name):
            raise NotFound(f"repository {name!r} not found")
        self.repositories_deleted([name])
        self.auth.forget_access()
        self._record(actor, "repository.delete", name)

    def list_tags(self, actor: Actor, name: str, after: str | None, limit: int | None) -> Page[TagInfo]:
        limit = limit_of(limit)
        self._visible_repository(actor, name)
        rows = self.queries.tags(name, after, limit + 1)
        if rows is None:
            raise NotFound(f"repository {name!r} not found")
        more = len(rows) > limit
        rows = rows[:limit]
        pulls = self.audit.pulls(name)
        items = [TagInfo(tag, digest, updated, *(pulls.get(tag) or (0, None))) for tag, digest, updated in rows]
        return Page(items, rows[-1][0] if more else None)

    # -- credentials of the caller ----------------------------------------------------------------
    def set_registry_password(self, actor: Actor, password: str | None) -> None:
        """Set (or, with None, remove) the caller's fixed password for `docker login`."""
        user = self._writer(actor)
        if password is not None:
            self._validate_password(password)
        self.credentials.set_registry_password(user.username, hash_password(password) if password is not None else None)
        self.auth.forget_access()
        self._record(actor, "registry_password.set" if password is not None else "registry_password.remove",
                     f"user:{user.username}")

    def list_temp_passwords(self, actor: Actor) -> list[TempPassword]:
        self._authenticated(actor)
        if actor.user is None:
            raise Forbidden("robot accounts have no temporary passwords")
        return self.credentials.list_temp(actor.user.username)

    def create_temp_password(self, actor: Actor, ttl_seconds: int | None = None, description: str | None = None,
                             repositories: list[str] | None = None, actions: list[str] | None = None) -> NewTempPassword:
        user = self._writer(actor)
        ttl = self.temp_password_ttl if ttl_seconds is None else ttl_seconds
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise Invalid(f"ttl_seconds must be between {MIN_TTL} and {MAX_TTL}")
        if description is not None and len(description) > 255:
            raise Invalid("description has at most 255 characters")
        patterns = [self._validate_pattern(p) for p in repositories] if repositories else None
        acts = self._validate_actions(actions) if actions is not None else None
        temp_id = uuid.uuid4().hex
        password = f"dkt_{temp_id}_{secrets.token_urlsafe(32)}"
        temp = self.credentials.add_temp(temp_id, user.username, password, utcnow() + timedelta(seconds=ttl), description,
                                         patterns, acts)
        self._record(actor, "temp_password.create", f"user:{user.username}",
                     {"id": temp_id, "expires_at": _aware(temp.expires_at).isoformat(), "repositories": patterns,
                      "actions": acts})
        return NewTempPassword(temp, password)

    def revoke_temp_password(self, actor: Actor, temp_id: str) -> TempPassword:
        user = self._writer(actor)
        temp = self.credentials.get_temp(temp_id) if temp_id.isalnum() and len(temp_id) <= 32 else None
        if temp is None or (temp.username != user.username and not user.is_admin):
            raise NotFound(f"temporary password {temp_id!r} not found")
        if temp.revoked_at is None:
            self.credentials.revoke_temp(temp_id)
            self.auth.forget_access()
            self._record(actor, "temp_password.revoke", f"user:{temp.username}", {"id": temp_id})
        found = self.credentials.get_temp(temp_id)
        assert found is not None
        return found

    # -- robots -----------------------------------------------------------------------------------
    def _robot_permissions(self, namespace: str, permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for perm in permissions:
            pattern = self._validate_pattern(str(perm.get("repositories") or ""))
            if "/" in pattern and not pattern.startswith(f"{namespace}/"):
                raise Invalid(f"pattern {pattern!r}: a pattern with '/' is a full name starting with '{namespace}/'; "
                              f"one without '/' is relative to {namespace!r}")
            out.append({"repositories": pattern, "actions": self._validate_actions(perm.get("actions") or [])})
        return out

    def _robot(self, namespace: str, name: str) -> Robot:
        robot = self.credentials.get_robot(namespace, name)
        if robot is None:
            raise NotFound(f"robot {name!r} not found in {namespace!r}")
        return robot

    def list_robots(self, actor: Actor, namespace: str) -> list[Robot]:
        self._require_owner(actor, namespace)
        return self.credentials.list_robots(namespace)

    def get_robot(self, actor: Actor, namespace: str, name: str) -> Robot:
        self._require_owner(actor, namespace)
        return self._robot(namespace, name)

    @staticmethod
    def _expiry(ttl_seconds: int | None, expires_at: datetime | None) -> datetime | None:
        if ttl_seconds is not None and expires_at is not None:
            raise Invalid("give ttl_seconds or expires_at, not both")
        if ttl_seconds is not None:
            if not MIN_TTL <= ttl_seconds <= 10 * MAX_TTL:
                raise Invalid(f"ttl_seconds must be between {MIN_TTL} and {10 * MAX_TTL}")
            return utcnow() + timedelta(seconds=ttl_seconds)
        if expires_at is not None:
            expires_at = _aware(expires_at)
            if expires_at <= utcnow():
                raise Invalid("expires_at is in the past")
        return expires_at

    def create_robot(self, actor: Actor, namespace: str, name: str, permissions: list[dict[str, Any]],
                     description: str | None = None, ttl_seconds: int | None = None,
                     expires_at: datetime | None = None) -> NewRobotSecret:
        self._require_owner(actor, namespace)
        if not ROBOT_NAME_RE.fullmatch(name):
            raise Invalid(f"invalid robot name {name[:80]!r}: up to 64 lowercase letters, digits and . _ -")
        perms = self._robot_permissions(namespace, permissions)
        expiry = self._expiry(ttl_seconds, expires_at)
        if self.credentials.get_robot(namespace, name) is not None:
            raise Conflict(f"robot {name!r} exists already in {namespace!r}")
        secret = "dkr_" + secrets.token_urlsafe(32)
        try:
            robot = self.credentials.add_robot(namespace, name, secret, perms, description, expiry)
        except Exception:
            if self.credentials.get_robot(namespace, name) is not None:
                raise Conflict(f"robot {name!r} exists already in {namespace!r}") from None
            raise
        self.auth.forget_access()
        self._record(actor, "robot.create", robot.username, {"permissions": perms,
                                                            "expires_at": expiry.isoformat() if expiry else None})
        return NewRobotSecret(robot, secret)

    def update_robot(self, actor: Actor, namespace: str, name: str, **fields: Any) -> Robot:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        changes: dict[str, Any] = {}
        if "description" in fields:
            changes["description"] = fields["description"]
        if "disabled" in fields:
            if not isinstance(fields["disabled"], bool):
                raise Invalid("disabled must be true or false")
            changes["disabled"] = fields["disabled"]
        if "permissions" in fields:
            changes["permissions"] = self._robot_permissions(namespace, fields["permissions"] or [])
        if "expires_at" in fields:
            changes["expires_at"] = self._expiry(None, fields["expires_at"])
        if changes:
            self.credentials.update_robot(namespace, name, **changes)
            self.auth.forget_access()
            detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
            self._record(actor, "robot.update", robot.username, detail)
        return self._robot(namespace, name)

    def rotate_robot(self, actor: Actor, namespace: str, name: str) -> NewRobotSecret:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        secret = "dkr_" + secrets.token_urlsafe(32)
        self.credentials.update_robot(namespace, name, secret=secret)
        self.auth.forget_access()
        self._record(actor, "robot.rotate", robot.username)
        return NewRobotSecret(self._robot(namespace, name), secret)

    def delete_robot(self, actor: Actor, namespace: str, name: str) -> None:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        self.credentials.delete_robot(namespace, name)
        self.auth.forget_access()
        self._record(actor, "robot.delete", robot.username)

    # -- users ------------------------------------------------------------------------------------
    def list_users(self, actor: Actor, after: str | None, limit: int | None) -> Page[User]:
        self._authenticated(actor)
        if not actor.is_admin:
            raise Forbidden("administrators only")
        limit = limit_of(limit)
        users = [u for u in self.users.list() if not after or u.username > after]
        more = len(users) > limit
        users = users[:limit]
        return Page(users, users[-1].username if more else None)

    def create_user(self, actor: Actor, username: str, password: str, is_admin: bool = False) -> User:
        self._require_admin(actor)
        if not USERNAME_RE.fullmatch(username):
            raise Invalid(f"invalid username {username[:80]!r}: up to 64 letters, digits and . _ @ -, "
                          "starting and ending with a letter or digit")
        self._validate_password(password)
        if self.users.get(username) is not None:
            raise Conflict(f"user {username!r} exists already")
        try:
            user = self.users.create(username, hash_password(password), is_admin=is_admin)
        except Exception:
            if self.users.get(username) is not None:
                raise Conflict(f"user {username!r} exists already") from None
            raise
        self.auth.forget_access()
        self._record(actor, "user.create", f"user:{username}", {"is_admin": is_admin})
        return user

    def update_user(self, actor: Actor, username: str, **fields: Any) -> User:
        self._require_admin(actor)
        user = self.users.get(username)
        if user is None:
            raise NotFound(f"user {username!r} not found")
        for key in ("disabled", "is_admin"):
            if key in fields and not isinstance(fields[key], bool):
                raise Invalid(f"{key} must be true or false")
        loses_admin = user.is_admin and not user.disabled and (
            fields.get("disabled") is True or fields.get("is_admin") is False)
        if loses_admin and self.queries.active_admins() <= 1:
            raise Conflict(f"{username!r} is the last active administrator")
        detail: dict[str, Any] = {}
        if fields.get("password") is not None:
            self._validate_password(fields["password"])
            self.users.set_password(username, hash_password(fields["password"]))
            detail["password"] = "changed"
        if "disabled" in fields and fields["disabled"] != user.disabled:
            self.users.set_disabled(username, fields["disabled"])
            detail["disabled"] = fields["disabled"]
        if "is_admin" in fields and fields["is_admin"] != user.is_admin:
            self.queries.set_admin(username, fields["is_admin"])
            detail["is_admin"] = fields["is_admin"]
        if detail:
            self.auth.forget_access()
            if "password" in detail or detail.get("disabled") is True:
                self.logins_ended(username)
            self._record(actor, "user.update", f"user:{username}", detail)
        found = self.users.get(username)
        assert found is not None
        return found

    # -- audit ------------------------------------------------------------------------------------
    def query_audit(self, actor: Actor, who: str | None, action: str | None, target: str | None,
                    before: int | None, limit: int | None) -> Page[AuditEvent]:
        principal = self._authenticated(actor)
        limit = limit_of(limit)
        visible_to = None
        if not actor.is_admin:
            roles = self.namespaces.roles_of(actor.user.username) if actor.user and principal.robot is None else {}
            visible_to = (principal.name, {ns for ns, role in roles.items() if role == "owner"})
        events = self.queries.audit(actor=who, action=action, target=target, before_id=before, limit=limit + 1,
                                    visible_to=visible_to)
        more = len(events) > limit
        events = events[:limit]
        return Page(events, str(events[-1].id) if more else None)
