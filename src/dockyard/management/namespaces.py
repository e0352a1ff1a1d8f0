"""Namespaces and their members: listing what the caller may see, creating one (the creator
becomes its owner), changing and deleting it, and setting or removing members' roles.

A namespace always keeps at least one owner. Members are audited on the namespace, with the
user in `detail`.
"""

from __future__ import annotations

from typing import Any

from dockyard.core.access import ROLES
from dockyard.core.names import validate_namespace
from dockyard.management.base import MAX_LIMIT, Actor, NamespaceInfo, Page, _ServiceBase, checked, limit_of
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.meta.namespaces import LastOwner, Member, Namespace

RESERVED_NAMESPACES = frozenset({"library"})  # one-component names live here: administrators only


class NamespaceUseCases(_ServiceBase):
    def _can_read_namespace(self, actor: Actor, ns: Namespace, roles: dict[str, str] | None = None) -> bool:
        if ns.public or actor.is_admin:
            return True
        principal = actor.principal
        if principal is None:
            return False
        if principal.robot is not None:
            return principal.robot.namespace == ns.name
        return (roles.get(ns.name) if roles is not None else self._role(actor, ns.name)) is not None

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
        checked(validate_namespace, name)
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
        removed = self.namespaces.delete(name, actor.origin)
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
        try:  # the store checks for the last owner in the same transaction as the change
            self.namespaces.set_member(namespace, username, role)
        except LastOwner:
            raise Conflict(f"{username!r} is the last owner of {namespace!r}; add another owner first") from None
        self.auth.forget_access()
        self._record(actor, "member.set", namespace, {"username": username, "role": role, "previous": current.get(username)})
        return next(m for m in self.namespaces.members(namespace) if m.username == username)

    def remove_member(self, actor: Actor, namespace: str, username: str) -> None:
        self._require_owner(actor, namespace)
        current = {m.username: m.role for m in self.namespaces.members(namespace)}
        if username not in current:
            raise NotFound(f"{username!r} is not a member of {namespace!r}")
        try:
            self.namespaces.remove_member(namespace, username)
        except LastOwner:
            raise Conflict(f"{username!r} is the last owner of {namespace!r}; add another owner first") from None
        self.auth.forget_access()
        self._record(actor, "member.remove", namespace, {"username": username, "role": current[username]})
