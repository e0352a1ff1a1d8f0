"""The reads behind the console's image-version pages, and the writes of the image-facts backfill.

A page of tags is one COUNT and one SELECT (tags ⋈ manifests ⟕ tag_pulls, LIMIT/OFFSET) in one
read transaction; sorting by name or push time walks an index of `tags` (the primary key, or
ix_tags_updated), so a page of a repository with thousands of tags costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, func, select, update

from dockyard.core.image import ImageFacts
from dockyard.core.manifest import IMAGE_TYPES, INDEX_TYPES
from dockyard.meta.db import Database, aware
from dockyard.meta.tables import manifest_children, manifests, repositories, tag_pulls, tags

SORTS = ("name", "pushed", "pulled", "size")


@dataclass(frozen=True, slots=True)
class TagRow:
    tag: str
    digest: str
    pushed_at: datetime
    media_type: str | None  # None: the tag's manifest row is gone (should not happen)
    artifact_type: str | None
    image_size: int | None
    platform: str | None
    pulls: int
    last_pulled_at: datetime | None


@dataclass(frozen=True, slots=True)
class TagPage:
    rows: list[TagRow]
    total: int
    page: int  # the page returned, clamped to [1, pages]


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """A manifest row with its image facts."""

    id: int
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    config_digest: str | None
    image_size: int | None
    platform: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A manifest whose facts are missing (pushed before migration 0003)."""

    id: int
    repository: str
    digest: str
    media_type: str
    size: int


def _facts(row: Any) -> ManifestFacts:
    return ManifestFacts(id=row.id, digest=row.digest, media_type=row.media_type, size=row.size,
                         artifact_type=row.artifact_type, config_digest=row.config_digest,
                         image_size=row.image_size, platform=row.platform)


_FACT_COLUMNS = (manifests.c.id, manifests.c.digest, manifests.c.media_type, manifests.c.size,
                 manifests.c.artifact_type, manifests.c.config_digest, manifests.c.image_size, manifests.c.platform)

_SET_FACTS = (
    update(manifests)
    .where(manifests.c.id == bindparam("mid"), manifests.c.image_size.is_(None))
    .values(config_digest=bindparam("config_digest"), image_size=bindparam("image_size"),
            platform=bindparam("platform"))
)


def _where(repo_id: int, search: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [tags.c.repository_id == repo_id]
    if search:
        where.append(tags.c.name.icontains(search, autoescape=True))
    return where


def count_query(repo_id: int, search: str | None) -> Select[Any]:
    return select(func.count()).select_from(tags).where(*_where(repo_id, search))


def _order(sort: str, descending: bool) -> list[Any]:
    key: Any = {"name": tags.c.name, "pushed": tags.c.updated_at,
                "pulled": tag_pulls.c.last_pulled_at, "size": manifests.c.image_size}[sort]
    order = [key.desc() if descending else key.asc()]
    if sort in ("pulled", "size"):  # nullable: NULLs last in both directions
        order = [order[0].nulls_last()]
    if sort != "name":  # then by name, for a stable order
        order.append(tags.c.name.desc() if descending else tags.c.name.asc())
    return order


_WITH_MANIFEST = and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.manifest_digest)
_WITH_PULLS = and_(tag_pulls.c.repository_id == tags.c.repository_id, tag_pulls.c.tag == tags.c.name)


def page_query(repo_id: int, sort: str, descending: bool, search: str | None, limit: int, offset: int) -> Select[Any]:
    """One page of a repository's tags with their manifests' facts and their pull counts.

    A deferred join: the inner query picks the page's tag names joining only what the sort needs
    (nothing when sorting by name or push time: it walks an index of `tags`), the outer one joins
    the 50 rows it keeps."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    source: Any = tags
    if sort == "size":
        source = source.outerjoin(manifests, _WITH_MANIFEST)
    elif sort == "pulled":
        source = source.outerjoin(tag_pulls, _WITH_PULLS)
    keys = (
        select(tags.c.name).select_from(source).where(*_where(repo_id, search))
        .order_by(*_order(sort, descending)).limit(limit).offset(offset)
        .subquery("page")
    )
    return (
        select(tags.c.name, tags.c.manifest_digest, tags.c.updated_at, manifests.c.media_type,
               manifests.c.artifact_type, manifests.c.image_size, manifests.c.platform,
               tag_pulls.c.pulls, tag_pulls.c.last_pulled_at)
        .select_from(
            keys.join(tags, and_(tags.c.repository_id == repo_id, tags.c.name == keys.c.name))
            .outerjoin(manifests, _WITH_MANIFEST)
            .outerjoin(tag_pulls, _WITH_PULLS)
        )
        .order_by(*_order(sort, descending))
    )


def _repo_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(repositories.c.id).where(repositories.c.name == name)).scalar()


class VersionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- pages of tags -----------------------------------------------------------------------------
    def page(self, repository: str, *, sort: str, descending: bool, search: str | None, page: int,
             per_page: int) -> TagPage | None:
        """Tags whose name contains `search` (case-insensitive), sorted by `sort` then by name,
        NULLs last, `page` clamped to the pages there are; None when the repository does not exist."""
        with self.db.read() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return None
            total = int(conn.execute(count_query(repo_id, search)).scalar_one())
            page = min(max(page, 1), max(1, -(-total // per_page)))
            q = page_query(repo_id, sort, descending, search, per_page, (page - 1) * per_page)
            rows = [
                TagRow(tag=r.name, digest=r.manifest_digest, pushed_at=aware(r.updated_at), media_type=r.media_type,
                       artifact_type=r.artifact_type, image_size=r.image_size, platform=r.platform,
                       pulls=int(r.pulls or 0), last_pulled_at=aware(r.last_pulled_at) if r.last_pulled_at else None)
                for r in conn.execute(q)
            ]
        return TagPage(rows, total, page)

    def manifests(self, repository: str, digests: Iterable[str]) -> dict[str, ManifestFacts]:
        """The rows of these digests in the repository (the children of a page's indexes: one query)."""
        wanted = set(digests)
        if not wanted:
            return {}
        q = (
            select(*_FACT_COLUMNS)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == repository, manifests.c.digest.in_(wanted))
        )
        with self.db.read() as conn:
            return {r.digest: _facts(r) for r in conn.execute(q)}

    # -- one version ---------------------------------------------------------------------------------
    def manifest(self, repository: str, digest: str) -> ManifestFacts | None:
        return self.manifests(repository, [digest]).get(digest)

    def tag(self, repository: str, tag: str) -> tuple[str, int, datetime | None] | None:
        """(digest, pulls, last pulled) of a tag, or None."""
        q = (
            select(tags.c.manifest_digest, tag_pulls.c.pulls, tag_pulls.c.last_pulled_at)
            .select_from(tags.join(repositories, repositories.c.id == tags.c.repository_id)
                         .outerjoin(tag_pulls, _WITH_PULLS))
            .where(repositories.c.name == repository, tags.c.name == tag)
        )
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        return row.manifest_digest, int(row.pulls or 0), aware(row.last_pulled_at) if row.last_pulled_at else None

    def tags_of(self, repository: str, digest: str) -> list[str]:
        """Every tag of the repository pointing at `digest`, sorted."""
        q = (
            select(tags.c.name)
            .join(repositories, repositories.c.id == tags.c.repository_id)
            .where(repositories.c.name == repository, tags.c.manifest_digest == digest)
            .order_by(tags.c.name)
        )
        with self.db.read() as conn:
            return list(conn.execute(q).scalars())

    # -- backfill --------------------------------------------------------------------------------------
    def pending(self, *, indexes: bool, after_id: int, limit: int) -> list[Pending]:
        """Manifests without an image size, images or indexes, in id order after `after_id`."""
        q = (
            select(manifests.c.id, repositories.c.name, manifests.c.digest, manifests.c.media_type, manifests.c.size)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(manifests.c.image_size.is_(None), manifests.c.id > after_id,
                   manifests.c.media_type.in_(INDEX_TYPES if indexes else IMAGE_TYPES))
            .order_by(manifests.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [Pending(r.id, r.name, r.digest, r.media_type, r.size) for r in conn.execute(q)]

    def children_sizes(self, index_ids: Iterable[int]) -> dict[int, list[int | None]]:
        """index id -> its children's image sizes (None: unknown, or the child row is gone)."""
        ids = set(index_ids)
        if not ids:
            return {}
        parent, child = manifests.alias("parent"), manifests.alias("child")
        q = (
            select(manifest_children.c.manifest_id, child.c.image_size)
            .select_from(
                manifest_children.join(parent, parent.c.id == manifest_children.c.manifest_id)
                .outerjoin(child, and_(child.c.repository_id == parent.c.repository_id,
                                       child.c.digest == manifest_children.c.child_digest))
            )
            .where(manifest_children.c.manifest_id.in_(ids))
        )
        out: dict[int, list[int | None]] = {i: [] for i in ids}
        with self.db.read() as conn:
            for manifest_id, size in conn.execute(q):
                out[manifest_id].append(size)
        return out

    def set_facts(self, facts: dict[int, ImageFacts]) -> int:
        """Store facts of manifests (by id) that have none yet; returns the rows updated."""
        if not facts:
            return 0
        params = [{"mid": mid, "config_digest": f.config_digest, "image_size": f.image_size, "platform": f.platform}
                  for mid, f in facts.items()]
        with self.db.write() as conn:  # one statement per row: executemany's rowcount is not portable
            return sum(conn.execute(_SET_FACTS, p).rowcount for p in params)
