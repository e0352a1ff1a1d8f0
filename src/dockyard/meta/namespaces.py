"""Namespaces, their members and roles, and repository facts for access decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from dockyard.core.access import DEFAULT_NAMESPACE, RepositoryFacts, is_public, namespace_of
from dockyard.core.events import REPOSITORY_CREATED, REPOSITORY_DELETED, SYSTEM, NewEvent, Origin
from dockyard.meta.db import Database, utcnow
from dockyard.meta.events import EventStore
from dockyard.meta.sql import upsert
from dockyard.meta.tables import namespace_members, namespaces, repositories, users


@dataclass(frozen=True, slots=True)
class Namespace:
    id: int
    name: str
    description: str | None
    public: bool
    auto_create: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    username: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Repository:
    name: str
    summary: str | None
    description: str | None
    visibility: str | None  # own setting; None inherits
    public: bool  # effective
    created_at: datetime
    last_push_at: datetime | None


def repository_of(row: Any, namespace_public: bool) -> Repository:
    """A `repositories` row as a Repository, its effective visibility by core.access.is_public."""
    return Repository(name=row.name, summary=row.summary, description=row.description, visibility=row.visibility,
                      public=is_public(row.visibility, namespace_public), created_at=row.created_at,
                      last_push_at=row.last_push_at)


def namespace_id(conn: Connection, name: str) -> int | None:
    """The id of the namespace with this name, or None (for stores that hang rows off namespaces)."""
    found = conn.execute(select(namespaces.c.id).where(namespaces.c.name == name)).scalar()
    return None if found is None else int(found)


class LastOwner(Exception):
    """A change of members that would leave a namespace without an owner."""


class NamespaceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- namespaces -----------------------------------------------------------------------------
    def create(self, name: str, description: str | None, public: bool, auto_create: bool) -> Namespace:
        with self.db.write() as conn:
            conn.execute(namespaces.insert(), {"name": name, "description": description, "public": public,
                                               "auto_create": auto_create, "created_at": utcnow()})
        ns = self.get(name)
        assert ns is not None
        return ns

    def get(self, name: str) -> Namespace | None:
        with self.db.read() as conn:
            row = conn.execute(select(namespaces).where(namespaces.c.name == name)).first()
        return Namespace(**row._mapping) if row else None

    def list(self, names: set[str] | None = None, after: str | None = None, limit: int = 100) -> list[Namespace]:
        """All namespaces (admin), or those in `names`, in name order after `after`."""
        q = select(namespaces).order_by(namespaces.c.name).limit(limit)
        if names is not None:
            q = q.where(namespaces.c.name.in_(names))
        if after:
            q = q.where(namespaces.c.name > after)
        with self.db.read() as conn:
            return [Namespace(**r._mapping) for r in conn.execute(q)]

    def update(self, name: str, **fields: object) -> bool:
        allowed = {k: v for k, v in fields.items() if k in ("description", "public", "auto_create")}
        if not allowed:
            return self.get(name) is not None
        with self.db.write() as conn:
            return conn.execute(update(namespaces).where(namespaces.c.name == name).values(**allowed)).rowcount > 0

    def delete(self, name: str, origin: Origin = SYSTEM) -> list[str]:
        """Delete the namespace and its repositories (tags and manifests go with them; blobs are
        left to garbage collection), with a repository.deleted event for each. Returns the names
        of the repositories removed."""
        with self.db.write() as conn:
            in_namespace = repositories.c.name.startswith(f"{name}/", autoescape=True)
            if name == DEFAULT_NAMESPACE:  # it holds the one-component names too
                in_namespace = or_(in_namespace, ~repositories.c.name.contains("/"))
            repos = list(conn.execute(select(repositories.c.name).where(in_namespace)).scalars())
            if repos:
                conn.execute(delete(repositories).where(repositories.c.name.in_(repos)))
                EventStore.add(conn, origin, [NewEvent(REPOSITORY_DELETED, r, r, {"namespace": name}) for r in repos])
            conn.execute(delete(namespaces).where(namespaces.c.name == name))
        return repos

    # -- members --------------------------------------------------------------------------------
    @staticmethod
    def _ids(conn: Connection, namespace: str, username: str, lock: bool = False) -> tuple[int, int] | None:
        """(namespace id, user id), or None if either is missing; `lock` locks the namespace's row."""
        q = select(namespaces.c.id).where(namespaces.c.name == namespace)
        ns_id = conn.execute(q.with_for_update(key_share=True) if lock else q).scalar()
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
        return (ns_id, user_id) if ns_id is not None and user_id is not None else None

    @classmethod
    def _keep_an_owner(cls, conn: Connection, namespace: str, username: str) -> tuple[int, int] | None:
        """`_ids` with the namespace locked; raises LastOwner when `username` is the namespace's
        only owner.

        Locking the namespace's row makes every change of its members one after another (a
        per-namespace mutex on PostgreSQL; SQLite has a single writer), so the owners counted
        here are still the owners when the caller's change lands: two owners demoting each other
        at the same moment cannot both succeed."""
        ids = cls._ids(conn, namespace, username, lock=True)
        if ids is None:
            return None
        owners = set(conn.execute(select(namespace_members.c.user_id).where(
            namespace_members.c.namespace_id == ids[0], namespace_members.c.role == "owner")).scalars())
        if owners == {ids[1]}:
            raise LastOwner(f"{username!r} is the last owner of {namespace!r}")
        return ids

    def set_member(self, namespace: str, username: str, role: str) -> bool:
        """Add a member or change their role; raises LastOwner when that demotes the last owner."""
        with self.db.write() as conn:
            # Making someone an owner never removes one: only other roles need the check.
            ids = self._ids(conn, namespace, username) if role == "owner" else self._keep_an_owner(conn, namespace, username)
            if ids is None:
                return False
            upsert(conn, namespace_members, {"namespace_id": ids[0], "user_id": ids[1], "role": role, "created_at": utcnow()},
                   ["namespace_id", "user_id"], ["role"])
            return True

    def remove_member(self, namespace: str, username: str) -> bool:
        """Raises LastOwner when `username` is the last owner."""
        with self.db.write() as conn:
            ids = self._keep_an_owner(conn, namespace, username)
            if ids is None:
                return False
            return conn.execute(delete(namespace_members).where(
                namespace_members.c.namespace_id == ids[0], namespace_members.c.user_id == ids[1])).rowcount > 0

    def members(self, namespace: str) -> list[Member]:
        q = (select(users.c.username, namespace_members.c.role, namespace_members.c.created_at)
             .join(users, users.c.id == namespace_members.c.user_id)
             .join(namespaces, namespaces.c.id == namespace_members.c.namespace_id)
             .where(namespaces.c.name == namespace).order_by(users.c.username))
        with self.db.read() as conn:
            return [Member(*r) for r in conn.execute(q)]

    def roles_of(self, username: str) -> dict[str, str]:
        """namespace name -> role of the user."""
        q = (select(namespaces.c.name, namespace_members.c.role)
             .join(namespace_members, namespaces.c.id == namespace_members.c.namespace_id)
             .join(users, users.c.id == namespace_members.c.user_id).where(users.c.username == username))
        with self.db.read() as conn:
            return {name: role for name, role in conn.execute(q)}

    # -- repositories ---------------------------------------------------------------------------
    def facts(self, repository: str) -> RepositoryFacts:
        ns_name = namespace_of(repository)
        with self.db.read() as conn:
            ns = conn.execute(select(namespaces.c.public, namespaces.c.auto_create).where(namespaces.c.name == ns_name)).first()
            repo = conn.execute(select(repositories.c.visibility).where(repositories.c.name == repository)).first()
        ns_public = bool(ns.public) if ns else False
        visibility = repo.visibility if repo else None
        return RepositoryFacts(
            name=repository, namespace=ns_name, namespace_exists=ns is not None, exists=repo is not None,
            public=is_public(visibility, ns_public),
            auto_create=bool(ns.auto_create) if ns else False,
        )

    def repositories(self, namespace: str | None, search: str | None, after: str | None, limit: int) -> list[Repository]:
        with self.db.read() as conn:
            ns_public = {n: p for n, p in conn.execute(select(namespaces.c.name, namespaces.c.public))}
            q = select(repositories).order_by(repositories.c.name).limit(limit)
            if namespace is not None:
                in_namespace = repositories.c.name.startswith(f"{namespace}/", autoescape=True)
                if namespace == DEFAULT_NAMESPACE:  # it holds the one-component names too
                    in_namespace = or_(in_namespace, ~repositories.c.name.contains("/"))
                q = q.where(in_namespace)
            if search:  # names are lower case: a search ignores case; % and _ are literal
                q = q.where(repositories.c.name.contains(search.lower(), autoescape=True))
            if after:
                q = q.where(repositories.c.name > after)
            rows = conn.execute(q).all()
        return [repository_of(r, bool(ns_public.get(namespace_of(r.name)))) for r in rows]

    def update_repository(self, name: str, **fields: object) -> bool:
        allowed = {k: v for k, v in fields.items() if k in ("summary", "description", "visibility")}
        with self.db.write() as conn:
            if not allowed:
                return conn.execute(select(repositories.c.id).where(repositories.c.name == name)).first() is not None
            return conn.execute(update(repositories).where(repositories.c.name == name).values(**allowed)).rowcount > 0

    def create_repository(self, name: str, summary: str | None, description: str | None, visibility: str | None,
                          origin: Origin = SYSTEM) -> bool:
        """False when it exists already."""
        from dockyard.meta.sql import insert_ignore

        with self.db.write() as conn:
            if not insert_ignore(conn, repositories, {"name": name, "created_at": utcnow(), "summary": summary,
                                                      "description": description, "visibility": visibility}):
                return False
            EventStore.add(conn, origin, [NewEvent(REPOSITORY_CREATED, name, name,
                                                   {"visibility": visibility} if visibility else {})])
            return True

    def delete_repository(self, name: str, origin: Origin = SYSTEM) -> bool:
        with self.db.write() as conn:
            if not conn.execute(delete(repositories).where(repositories.c.name == name)).rowcount:
                return False
            EventStore.add(conn, origin, [NewEvent(REPOSITORY_DELETED, name, name)])
            return True
