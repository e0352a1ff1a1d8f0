"""Repository search (`docker search`, GET /v1/search) and stars.

`candidates` ranks in SQL and returns at most `limit` rows, best first:

0. the name is the query, or its last component is (`nginx` finds `library/nginx`, `team/nginx`);
1. the name, or its last component, starts with the query;
2. the name contains the query;
3. the summary or the description contains it.

Who may see which candidate is decided by the caller (the registry's access rules), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, literal, or_, select

from dockyard.core.access import is_public, namespace_of
from dockyard.meta.db import Database, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import build_configs, namespaces, repositories, repository_stars, users

MAX_QUERY = 100


@dataclass(frozen=True, slots=True)
class Found:
    name: str
    description: str | None  # the summary, else the start of the description
    stars: int
    automated: bool  # built from its code source (a build configuration)
    public: bool


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SearchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def candidates(self, query: str, limit: int) -> list[Found]:
        q = _like(query.lower())
        name = repositories.c.name
        summary = func.lower(func.coalesce(repositories.c.summary, ""))
        description = func.lower(func.coalesce(repositories.c.description, ""))
        rank = case(
            (or_(name == query.lower(), name.like(f"%/{q}", escape="\\")), 0),
            (or_(name.like(f"{q}%", escape="\\"), name.like(f"%/{q}%", escape="\\")), 1),
            (name.like(f"%{q}%", escape="\\"), 2),
            else_=3)
        stars = (select(func.count()).where(repository_stars.c.repository_id == repositories.c.id)
                 .correlate(repositories).scalar_subquery())
        automated = (select(literal(1)).where(build_configs.c.repository == repositories.c.name)
                     .correlate(repositories).exists())
        matches = or_(name.like(f"%{q}%", escape="\\"), summary.like(f"%{q}%", escape="\\"),
                      description.like(f"%{q}%", escape="\\"))
        query_ = (select(name, repositories.c.summary, repositories.c.description, repositories.c.visibility,
                         stars.label("stars"), automated.label("automated"))
                  .where(matches).order_by(rank, stars.desc(), name).limit(limit))
        with self.db.read() as conn:
            ns_public = {n: bool(p) for n, p in conn.execute(select(namespaces.c.name, namespaces.c.public))}
            rows = conn.execute(query_).all()
        return [Found(r.name, _describe(r.summary, r.description), int(r.stars), bool(r.automated),
                      is_public(r.visibility, ns_public.get(namespace_of(r.name), False))) for r in rows]

    # -- stars --------------------------------------------------------------------------------------
    def _ids(self, conn: Any, repository: str, username: str) -> tuple[int | None, int | None]:
        repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == repository)).scalar()
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
        return repo_id, user_id

    def star(self, repository: str, username: str, on: bool) -> bool:
        """Star (or, `on` false, unstar) a repository for a user; False when either does not exist."""
        with self.db.write() as conn:
            repo_id, user_id = self._ids(conn, repository, username)
            if repo_id is None or user_id is None:
                return False
            if on:
                insert_ignore(conn, repository_stars, {"repository_id": repo_id, "user_id": user_id, "created_at": utcnow()})
            else:
                conn.execute(delete(repository_stars).where(repository_stars.c.repository_id == repo_id,
                                                            repository_stars.c.user_id == user_id))
            return True

    def stars(self, repository: str, username: str | None) -> tuple[int, bool]:
        """(how many users starred it, whether `username` did)."""
        with self.db.read() as conn:
            repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == repository)).scalar()
            count = conn.execute(select(func.count()).select_from(repository_stars)
                                 .where(repository_stars.c.repository_id == repo_id)).scalar_one()
            mine = False
            if username is not None and repo_id is not None:
                mine = conn.execute(select(repository_stars.c.user_id).join(users, users.c.id == repository_stars.c.user_id)
                                    .where(repository_stars.c.repository_id == repo_id,
                                           users.c.username == username)).first() is not None
        return int(count), mine


def _describe(summary: str | None, description: str | None) -> str | None:
    if summary:
        return summary
    if description:
        first = description.strip().splitlines()[0] if description.strip() else ""
        return first[:200] or None
    return None
