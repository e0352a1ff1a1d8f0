"""Repositories and their tags: listing and reading what the caller may pull, creating and
changing repositories (owners and developers of the namespace), deleting them (owners).

A repository the caller may not pull is NotFound, as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from dockyard.core.access import is_public, namespace_of
from dockyard.core.names import validate_name, validate_namespace
from dockyard.management.base import MAX_LIMIT, Actor, Page, TagInfo, _ServiceBase, checked, limit_of
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.meta.namespaces import Namespace, Repository
from dockyard.meta.users import User


class RepositoryUseCases(_ServiceBase):
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
            checked(validate_namespace, namespace)
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
        checked(validate_name, name)
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

    def _may_publish(self, actor: Actor, user: User, namespace: Namespace, was_public: bool, visibility: str | None) -> None:
        """Only owners (and administrators) make a repository public: the namespace's owners
        decide who may pull, so a developer may not open up what they keep private."""
        becomes_public = is_public(visibility, namespace.public)
        if becomes_public and not was_public and not user.is_admin and self._role(actor, namespace.name) != "owner":
            raise Forbidden(f"only owners of {namespace.name!r} or administrators may make a repository public")

    def create_repository(self, actor: Actor, name: str, summary: str | None = None, description: str | None = None,
                          visibility: str | None = None) -> Repository:
        self._writer(actor)
        checked(validate_name, name)
        self._validate_visibility(visibility)
        namespace = namespace_of(name)
        ns = self._namespace(namespace)
        user = self._require_role(actor, namespace, ("owner", "developer"), "create repositories")
        # Created as the namespace says (inherit) is the owners' choice; an explicit "public" in a
        # private namespace is not a developer's.
        self._may_publish(actor, user, ns, was_public=ns.public, visibility=visibility)
        if not self.namespaces.create_repository(name, summary, description, visibility, actor.origin):
            raise Conflict(f"repository {name!r} exists already")
        self.auth.forget_access()  # the audit record is the repository.created event's
        repo = self.queries.repository(name)
        assert repo is not None
        return repo

    def update_repository(self, actor: Actor, name: str, **fields: Any) -> Repository:
        self._writer(actor)
        checked(validate_name, name)
        changes = {k: v for k, v in fields.items() if k in ("summary", "description", "visibility")}
        if "visibility" in changes:
            self._validate_visibility(changes["visibility"])
        before = self.queries.repository(name)
        if before is None:
            raise NotFound(f"repository {name!r} not found")
        user = self._require_role(actor, namespace_of(name), ("owner", "developer"), "change repositories")
        if "visibility" in changes:
            self._may_publish(actor, user, self._namespace(namespace_of(name)), before.public, changes["visibility"])
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
        checked(validate_name, name)
        if self.queries.repository(name) is None:
            raise NotFound(f"repository {name!r} not found")
        self._require_role(actor, namespace_of(name), ("owner",), "delete repositories")
        if not self.namespaces.delete_repository(name, actor.origin):
            raise NotFound(f"repository {name!r} not found")
        self.repositories_deleted([name])
        self.auth.forget_access()  # the audit record is the repository.deleted event's

    def list_tags(self, actor: Actor, name: str, after: str | None, limit: int | None) -> Page[TagInfo]:
        self._authenticated(actor)
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
