"""What every management use-case shares: the caller (`Actor`), the small result types, page
limits, and `_ServiceBase` with the stores and the checks of who may do what.

The use-cases themselves are mixins over `_ServiceBase`, one module per resource (namespaces,
repositories, credentials, users); `service.ManagementService` puts them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from dockyard.auth.policy import Principal
from dockyard.auth.service import AuthService
from dockyard.core.errors import RegistryError
from dockyard.core.events import Origin
from dockyard.management.errors import Forbidden, Invalid, NotFound, Unauthenticated
from dockyard.meta.audit import AuditStore
from dockyard.meta.credentials import CredentialStore, Robot, TempPassword
from dockyard.meta.namespaces import Namespace, NamespaceStore
from dockyard.meta.queries import ManagementQueries
from dockyard.meta.search import SearchStore
from dockyard.meta.users import User, UserStore
from dockyard.registry.builds import BuildService
from dockyard.registry.webhooks import WebhookService

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


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
    def origin(self) -> Origin:
        """As the events of a change name who made it."""
        return Origin(self.name, self.remote)

    @property
    def user(self) -> User | None:
        return self.principal.user if self.principal else None

    @property
    def read_only(self) -> bool:
        """Robots, temporary passwords and the fixed registry password may read, never change
        anything: only a login with the account password may (Principal.account_login)."""
        return self.principal is None or not self.principal.account_login

    @property
    def narrowed(self) -> bool:
        """Credentials limited to some repositories or actions: a robot (its permissions) or a
        temporary password with limits (policy.repository_actions applies them). They are for the
        registry only: the management API tells them who they are (whoami) and nothing else,
        since members, the audit log and credentials reach far beyond what they were limited to."""
        principal = self.principal
        if principal is None:
            return False
        temp = principal.temp
        return principal.robot is not None or (temp is not None and (temp.repositories is not None
                                                                     or temp.actions is not None))


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


def checked(validate: Callable[[str], T], value: str) -> T:
    """`validate(value)` with a check of `core` (validate_namespace, validate_name, validate_tag,
    Digest.parse): its domain error turned into Invalid with the same message."""
    try:
        return validate(value)
    except RegistryError as exc:
        raise Invalid(exc.message) from None


def writer_of(actor: Actor) -> User:
    """The user allowed to change things: signed in with the account password, not a robot, not
    a temporary password (raises Unauthenticated or Forbidden)."""
    _ServiceBase._authenticated(actor)
    if actor.read_only or actor.user is None:
        raise Forbidden("robot accounts, temporary passwords and registry passwords may only read; "
                        "sign in with the account password to change things")
    return actor.user


class _ServiceBase:
    def __init__(self, *, users: UserStore, namespaces: NamespaceStore, credentials: CredentialStore,
                 audit: AuditStore, auth: AuthService, queries: ManagementQueries, temp_password_ttl: int,
                 repositories_deleted: Callable[[list[str]], None] = lambda names: None,
                 logins_ended: Callable[[str], object] = lambda username: None,
                 dispatch_events: Callable[[], object] = lambda: None,
                 webhooks: WebhookService | None = None, builds: BuildService | None = None,
                 search: SearchStore | None = None) -> None:
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
        # Hands pending events on (the audit log is one subscriber), so the log shows a push
        # made a moment ago rather than after the next dispatch.
        self.dispatch_events = dispatch_events
        # Webhooks of namespaces (registry/webhooks.py); None: not offered (management/webhooks.py).
        self.webhooks = webhooks
        # Automated builds (registry/builds.py); None: not offered (management/builds.py).
        self.builds = builds
        # Repository search and stars (meta/search.py; management/search.py).
        self.search_store = search

    def _record(self, actor: Actor, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        self.audit.record(actor.name, action, target, detail, actor.remote)

    @staticmethod
    def _authenticated(actor: Actor, narrowed_ok: bool = False) -> Principal:
        """The caller; every use-case starts here, so narrowed credentials are refused everywhere
        but where `narrowed_ok` (whoami) says otherwise."""
        if actor.principal is None:
            raise Unauthenticated("authentication required")
        if actor.narrowed and not narrowed_ok:
            raise Forbidden("robot accounts and temporary passwords limited to some repositories or actions are "
                            "for the registry only; sign in with the account password to use this")
        return actor.principal

    @staticmethod
    def _writer(actor: Actor) -> User:
        return writer_of(actor)

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
    def _validate_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise Invalid(f"a password has at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise Invalid(f"a password has at most {MAX_PASSWORD} characters")
