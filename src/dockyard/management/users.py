"""Who the caller is, the user accounts (administrators only), and the audit log (all of it for
administrators; otherwise what the caller did and what happened in the namespaces they own).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from dockyard.auth.passwords import hash_password, hash_password_like
from dockyard.auth.service import BUILD_USER
from dockyard.management.base import Actor, Page, WhoAmI, _ServiceBase, limit_of
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.meta.audit import AuditEvent
from dockyard.meta.users import LastAdministrator, User

log = logging.getLogger("dockyard.management")

USERNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._@-]{0,62}[A-Za-z0-9])?")


class UserUseCases(_ServiceBase):
    # -- who am I ---------------------------------------------------------------------------------
    def whoami(self, actor: Actor) -> WhoAmI:
        principal = self._authenticated(actor, narrowed_ok=True)
        if principal.robot is not None:
            return WhoAmI(username=principal.name, kind="robot", is_admin=False, read_only=True, temp_password_id=None,
                          namespaces={principal.robot.namespace: "robot"})
        assert principal.user is not None
        return WhoAmI(username=principal.name, kind="user", is_admin=principal.is_admin, read_only=actor.read_only,
                      temp_password_id=principal.temp.id if principal.temp else None,
                      namespaces=self.namespaces.roles_of(principal.user.username))

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
        if username == BUILD_USER:
            raise Invalid(f"the username {BUILD_USER!r} is reserved: builds log in to the registry with it")
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
        detail: dict[str, Any] = {}
        password_hash = None
        if fields.get("password") is not None:
            self._validate_password(fields["password"])
            # The registry password's salt (see hash_password_like): one argon2 check for both.
            password_hash = hash_password_like(fields["password"], user.registry_password_hash)
            detail["password"] = "changed"
        changes = {k: fields[k] for k in ("disabled", "is_admin") if k in fields and fields[k] != getattr(user, k)}
        detail.update(changes)
        try:  # one transaction: the last-administrator check cannot race another change
            if self.users.update(username, password_hash=password_hash, **changes) is None:
                raise NotFound(f"user {username!r} not found")
        except LastAdministrator:
            raise Conflict(f"{username!r} is the last active administrator") from None
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
        try:
            self.dispatch_events()
        except Exception:  # the newest records show a moment later; the log still shows
            log.exception("dispatching events failed")
        events = self.queries.audit(actor=who, action=action, target=target, before_id=before, limit=limit + 1,
                                    visible_to=visible_to)
        more = len(events) > limit
        events = events[:limit]
        return Page(events, str(events[-1].id) if more else None)
