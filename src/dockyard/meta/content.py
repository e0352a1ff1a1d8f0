"""Repositories, blobs, manifests and tags: the metadata of what the registry holds.

Every method is one transaction. Checks that must hold at commit time (a manifest's blobs
exist; garbage collection never removes a blob a new manifest references) are made inside the
same transaction as the write, so the database serialises them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.core.access import namespace_of
from dockyard.core.errors import ManifestBlobUnknown
from dockyard.core.events import (
    BLOB_DELETED,
    MANIFEST_DELETED,
    MANIFEST_PUSHED,
    REPOSITORY_CREATED,
    SYSTEM,
    TAG_DELETED,
    TAG_MOVED,
    NewEvent,
    Origin,
    manifest_target,
)
from dockyard.core.image import ImageFacts
from dockyard.core.manifest import ParsedManifest
from dockyard.meta.db import Database, utcnow
from dockyard.meta.events import EventStore
from dockyard.meta.raw import RawCursor, marks
from dockyard.meta.sql import insert_ignore, upsert
from dockyard.meta.tables import (
    blobs,
    manifest_blobs,
    manifest_children,
    manifest_contents,
    manifests,
    namespaces,
    repositories,
    repository_blobs,
    tags,
    upload_sessions,
)


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject_digest: str | None
    annotations: dict[str, str] | None
    created_at: datetime


def _record(row: object) -> ManifestRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ManifestRecord(
        digest=m["digest"],
        media_type=m["media_type"],
        size=m["size"],
        artifact_type=m["artifact_type"],
        subject_digest=m["subject_digest"],
        annotations=json.loads(m["annotations"]) if m["annotations"] else None,
        created_at=m["created_at"],
    )


def _repo_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(repositories.c.id).where(repositories.c.name == name)).scalar()


def _ensure_repo(conn: Connection, name: str, origin: Origin) -> int:
    repo_id = _repo_id(conn, name)
    if repo_id is None:
        # The access policy decided that this push may create the repository (and, for an
        # administrator, its namespace): a new namespace is private and lets pushes create.
        insert_ignore(conn, namespaces, {"name": namespace_of(name), "public": False, "auto_create": True,
                                         "created_at": utcnow()})
        if insert_ignore(conn, repositories, {"name": name, "created_at": utcnow()}):
            EventStore.add(conn, origin, [NewEvent(REPOSITORY_CREATED, name, name)])
        repo_id = _repo_id(conn, name)
    assert repo_id is not None
    return repo_id


_DELETE_SESSION = delete(upload_sessions).where(upload_sessions.c.id == bindparam("id"))
_INSERT_MANIFEST = (
    "INSERT INTO manifests (repository_id, digest, media_type, size, artifact_type, subject_digest,"
    " annotations, created_at, config_digest, image_size, platform)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id"
)


class ContentStore:
    def __init__(self, db: Database, cache_repository_ids: bool = True) -> None:
        self.db = db
        # name -> id, saving a SELECT in every push transaction. Repositories are never renamed;
        # a deletion made in this process clears the cache (app.py), so it is only used when this
        # process sees every deletion: one worker.
        self.cache_repository_ids = cache_repository_ids
        self._repo_ids: dict[str, int] = {}
        # The driver's own IntegrityError, raised by statements run on its cursor (meta/raw.py).
        self._integrity_error: type[Exception] = db.engine.dialect.dbapi.IntegrityError  # type: ignore[union-attr]

    def _repo(self, conn: Connection, name: str, origin: Origin) -> int:
        repo_id = self._repo_ids.get(name)
        if repo_id is None:
            repo_id = _repo_id(conn, name)
            if repo_id is None:  # created by this transaction, which may yet roll back: not cached
                repo_id = _ensure_repo(conn, name, origin)
            elif self.cache_repository_ids:  # committed earlier: safe to remember
                self._repo_ids[name] = repo_id
        return repo_id

    def _repo_raw(self, cur: RawCursor, name: str, now: object, origin: Origin) -> int:
        """`_repo` for the push's raw transaction (meta/raw.py); creates the repository (and its
        namespace) as `_ensure_repo` does."""
        repo_id = self._repo_ids.get(name)
        if repo_id is not None:
            return repo_id
        row = cur.one("SELECT id FROM repositories WHERE name = ?", (name,))
        if row is not None:
            if self.cache_repository_ids:  # committed earlier: safe to remember
                self._repo_ids[name] = row[0]
            return int(row[0])
        # As _ensure_repo: a new namespace is private and lets pushes create.
        cur.execute("INSERT INTO namespaces (name, public, auto_create, created_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING", (namespace_of(name), False, True, now))
        if cur.execute("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, now)):
            EventStore.add_raw(cur, now, origin, [NewEvent(REPOSITORY_CREATED, name, name)])
        row = cur.one("SELECT id FROM repositories WHERE name = ?", (name,))
        assert row is not None
        return int(row[0])  # created by this transaction, which may yet roll back: not cached

    # -- repositories -------------------------------------------------------------------------
    def catalog(self, last: str | None, n: int) -> list[str]:
        q = select(repositories.c.name).order_by(repositories.c.name).limit(n)
        if last:
            q = q.where(repositories.c.name > last)
        with self.db.read() as conn:
            return list(conn.execute(q).scalars())

    # -- blobs --------------------------------------------------------------------------------
    def blob_size_in(self, repository: str, digest: str) -> int | None:
        """Size of a blob readable through `repository`, or None."""
        q = (
            select(blobs.c.size)
            .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
            .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
            .where(repositories.c.name == repository, blobs.c.digest == digest)
        )
        with self.db.read() as conn:
            return conn.execute(q).scalar()

    def add_blob(self, repository: str, digest: str, size: int, place: Callable[[], None],
                 end_session: str | None = None, origin: Origin = SYSTEM) -> None:
        """Record a blob and make it readable through `repository`; `place` puts its bytes in
        the store inside the same transaction (after the row is locked), see BlobStore.place.
        `end_session` names the upload session that this completes, deleted in the same transaction."""
        now = utcnow()
        with self.db.write() as conn:
            repo_id = self._repo(conn, repository, origin)
            # An upsert, not an insert-if-absent: it locks an existing row for the rest of the
            # transaction (PostgreSQL's DO NOTHING does not), so GC's delete of the row waits for
            # us, or, if GC deleted it first, we wait and insert it again; either way the row,
            # the bytes we place and our repository link stay together.
            upsert(conn, blobs, {"digest": digest, "size": size, "created_at": now}, ["digest"], ["size"])
            place()
            if end_session is not None:
                conn.execute(_DELETE_SESSION, {"id": end_session})
            upsert(conn, repository_blobs, {"repository_id": repo_id, "digest": digest, "linked_at": now},
                   ["repository_id", "digest"], ["linked_at"])

    def link_blob(self, repository: str, digest: str, source: str | None, origin: Origin = SYSTEM) -> bool:
        """Cross-repository mount. With `source`, only from that repository; without, from any.
        False when there is nothing to mount (also when GC removed the blob meanwhile)."""
        try:
            return self._link_blob(repository, digest, source, origin)
        except IntegrityError:
            return False  # GC deleted the blob between our check and our link (PostgreSQL)

    def _link_blob(self, repository: str, digest: str, source: str | None, origin: Origin) -> bool:
        with self.db.write() as conn:
            if source is not None:
                q = (
                    select(repository_blobs.c.digest)
                    .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
                    .where(repositories.c.name == source, repository_blobs.c.digest == digest)
                )
            else:
                q = select(blobs.c.digest).where(blobs.c.digest == digest)
            if conn.execute(q).first() is None:
                return False
            repo_id = _ensure_repo(conn, repository, origin)
            upsert(conn, repository_blobs, {"repository_id": repo_id, "digest": digest, "linked_at": utcnow()},
                   ["repository_id", "digest"], ["linked_at"])
            return True

    def blob_repositories(self, digest: str) -> list[str]:
        q = (
            select(repositories.c.name)
            .join(repository_blobs, repositories.c.id == repository_blobs.c.repository_id)
            .where(repository_blobs.c.digest == digest)
        )
        with self.db.read() as conn:
            return list(conn.execute(q).scalars())

    def unlink_blob(self, repository: str, digest: str, origin: Origin = SYSTEM) -> bool:
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            res = conn.execute(
                delete(repository_blobs).where(repository_blobs.c.repository_id == repo_id, repository_blobs.c.digest == digest)
            )
            if not res.rowcount:
                return False
            EventStore.add(conn, origin, [NewEvent(BLOB_DELETED, repository, f"{repository}@{digest}", {"digest": digest})])
            return True

    # -- manifests ------------------------------------------------------------------------------
    def put_manifest(
        self, repository: str, digest: str, data: bytes, parsed: ParsedManifest, tag_names: Sequence[str],
        facts: ImageFacts | None = None, origin: Origin = SYSTEM, reference: str | None = None,
    ) -> None:
        """Record a manifest with its bytes and point each of `tag_names` at it, all in one
        transaction (a push by digest with `?tag=` parameters tags all or nothing).

        `facts` are an image's stored facts (core/image.py; without them they stay NULL for
        the backfill); an index's size is summed here from its children's rows. The push's
        events (manifest.pushed, tag.moved for each tag that names another manifest now,
        repository.created) are written in the same transaction, by `origin`; `reference` is what
        the client pushed to (a tag or the digest) and names the push in the audit log.
        Raises ManifestBlobUnknown when a referenced blob or child manifest is not in the repository.
        """
        try:
            self._put_manifest(repository, digest, data, parsed, tag_names, facts, origin, reference or digest)
        except (IntegrityError, self._integrity_error):
            # PostgreSQL: garbage collection removed a referenced blob between our check and our
            # insert; the foreign key caught it. The client pushes the blob again.
            raise ManifestBlobUnknown("a referenced blob was removed while the manifest was pushed; push it again") from None

    def _put_manifest(
        self, repository: str, digest: str, data: bytes, parsed: ParsedManifest, tag_names: Sequence[str],
        facts: ImageFacts | None, origin: Origin, reference: str,
    ) -> None:
        # The hottest write of a push: plain SQL on the driver's cursor (meta/raw.py says why).
        size = len(data)
        with self.db.raw_write() as driver:
            cur = RawCursor(driver, self.db.is_sqlite)
            now = cur.when(utcnow())
            repo_id = self._repo_raw(cur, repository, now, origin)
            needed = {d.digest for d in parsed.blob_references()}
            if needed:
                have = {row[0] for row in cur.all(
                    f"SELECT digest FROM repository_blobs WHERE repository_id = ? AND digest IN ({marks(len(needed))})",
                    [repo_id, *needed])}
                missing = sorted(needed - have)
                if missing:
                    raise ManifestBlobUnknown(f"blob {missing[0]} is not in repository {repository}", {"digest": missing[0]})
            children = {d.digest for d in parsed.manifests}
            if parsed.is_index:
                facts = ImageFacts(None, size, None)
            if children:
                # Locked (PostgreSQL) as they are checked: garbage collection cannot delete a
                # child between this check and our commit (meta/gc.py delete_manifest_if_unkept).
                sizes: dict[str, int | None] = dict(cur.all(  # type: ignore[arg-type]
                    f"SELECT digest, image_size FROM manifests WHERE repository_id = ? AND digest IN ({marks(len(children))})"
                    + cur.key_share, [repo_id, *children]))
                missing = sorted(children - sizes.keys())
                if missing:
                    raise ManifestBlobUnknown(
                        f"manifest {missing[0]} is not in repository {repository}", {"digest": missing[0]}
                    )
                # An index weighs its own bytes and its children's (each once); unknown if one is.
                known = [s for s in sizes.values() if s is not None]
                facts = ImageFacts(None, size + sum(known) if len(known) == len(sizes) else None, None)
            # The manifest's own bytes are a blob too (kind: self), so GC treats them uniformly;
            # the bytes themselves are a manifest_contents row, written with everything else.
            cur.execute("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (digest, size, now))
            cur.execute("INSERT INTO manifest_contents (digest, content) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (digest, data))
            row = (repo_id, digest, parsed.media_type, size, parsed.effective_artifact_type(),
                   parsed.subject.digest if parsed.subject else None,
                   json.dumps(parsed.annotations) if parsed.annotations else None, now,
                   facts.config_digest if facts else None, facts.image_size if facts else None,
                   facts.platform if facts else None)
            inserted = cur.one(_INSERT_MANIFEST, row)
            if inserted is None and tag_names and not self.db.is_sqlite:
                inserted = self._hold_existing(cur, repo_id, digest, row)
            if inserted is not None:
                manifest_id = inserted[0]
                cur.execute_many("INSERT INTO manifest_blobs (manifest_id, digest) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                 [(manifest_id, d) for d in needed | {digest}])
                cur.execute_many(
                    "INSERT INTO manifest_children (manifest_id, child_digest) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(manifest_id, c) for c in children])
            pushed = {"digest": digest, "media_type": parsed.media_type, "size": size}
            if tag_names:
                pushed["tags"] = list(tag_names)
            if parsed.subject:
                pushed["subject"] = parsed.subject.digest
            new = [NewEvent(MANIFEST_PUSHED, repository, manifest_target(repository, reference), pushed)]
            if tag_names:
                # What each tag named before (locked on PostgreSQL, so concurrent pushes of one
                # tag each see the other's result): a tag that names another manifest now moved.
                before = dict(cur.all(
                    f"SELECT name, manifest_digest FROM tags WHERE repository_id = ? AND name IN ({marks(len(tag_names))})"
                    + ("" if self.db.is_sqlite else " FOR UPDATE"), [repo_id, *tag_names]))
                new += [NewEvent(TAG_MOVED, repository, f"{repository}:{tag}",
                                 {"tag": tag, "digest": digest, "previous": before.get(tag)})
                        for tag in tag_names if before.get(tag) != digest]
            EventStore.add_raw(cur, now, origin, new)
            cur.execute_many(
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest,"
                " updated_at = excluded.updated_at",
                [(repo_id, tag, digest, now) for tag in tag_names])
            cur.execute("UPDATE repositories SET last_push_at = ? WHERE id = ?", (now, repo_id))

    @staticmethod
    def _hold_existing(cur: RawCursor, repo_id: int, digest: str, row: tuple[object, ...]) -> tuple[object, ...] | None:
        """The manifest being tagged is in the repository already (PostgreSQL): lock its row until
        we commit, so that garbage collection, which may be deleting it as untagged, either
        finishes first or waits for our tag and then sees it (meta/gc.py delete_manifest_if_unkept).
        Our INSERT … ON CONFLICT DO NOTHING took no lock. When GC's delete won (the locking SELECT
        waited for it and finds no row), the manifest is stored again from the pushed bytes:
        returns the new row's id, or None when the existing row is held."""
        for _ in range(3):  # each round means another transaction removed or re-created the row meanwhile
            if cur.one("SELECT id FROM manifests WHERE repository_id = ? AND digest = ?" + cur.key_share,
                       (repo_id, digest)) is not None:
                return None
            inserted = cur.one(_INSERT_MANIFEST, row)
            if inserted is not None:
                return inserted
        raise ManifestBlobUnknown(f"manifest {digest} was removed while it was tagged; push it again", {"digest": digest})

    def manifest_content(self, digest: str) -> bytes | None:
        """A manifest's bytes, or None for one pushed before they were kept here (migration
        0005: its bytes are a file in the blob store) or one not stored at all."""
        with self.db.read() as conn:
            value = conn.execute(select(manifest_contents.c.content).where(manifest_contents.c.digest == digest)).scalar()
        return bytes(value) if value is not None else None

    def resolve_tag(self, repository: str, tag: str) -> str | None:
        q = (
            select(tags.c.manifest_digest)
            .join(repositories, repositories.c.id == tags.c.repository_id)
            .where(repositories.c.name == repository, tags.c.name == tag)
        )
        with self.db.read() as conn:
            return conn.execute(q).scalar()

    def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        q = (
            select(manifests)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == repository, manifests.c.digest == digest)
        )
        with self.db.read() as conn:
            row = conn.execute(q).first()
        return _record(row) if row else None

    def delete_manifest(self, repository: str, digest: str, origin: Origin = SYSTEM) -> bool:
        """Delete a manifest by digest, and with it every tag that points to it."""
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            gone = conn.execute(delete(tags).where(tags.c.repository_id == repo_id, tags.c.manifest_digest == digest)
                                .returning(tags.c.name)).scalars().all()
            res = conn.execute(delete(manifests).where(manifests.c.repository_id == repo_id, manifests.c.digest == digest))
            if not res.rowcount:
                return False
            detail: dict[str, object] = {"digest": digest}
            if gone:
                detail["tags"] = sorted(gone)
            EventStore.add(conn, origin, [NewEvent(MANIFEST_DELETED, repository, f"{repository}@{digest}", detail)])
            return True

    def delete_tag(self, repository: str, tag: str, origin: Origin = SYSTEM) -> bool:
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            digest = conn.execute(delete(tags).where(tags.c.repository_id == repo_id, tags.c.name == tag)
                                  .returning(tags.c.manifest_digest)).scalar()
            if digest is None:
                return False
            EventStore.add(conn, origin, [NewEvent(TAG_DELETED, repository, f"{repository}:{tag}",
                                                   {"tag": tag, "digest": digest})])
            return True

    def list_tags(self, repository: str, last: str | None, n: int | None) -> list[str] | None:
        """Tags in lexical order after `last`; None when the repository does not exist."""
        with self.db.read() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return None
            q = select(tags.c.name).where(tags.c.repository_id == repo_id).order_by(tags.c.name)
            if last:
                q = q.where(tags.c.name > last)
            if n is not None:
                q = q.limit(n)
            return list(conn.execute(q).scalars())

    def referrers(self, repository: str, digest: str, artifact_type: str | None) -> list[ManifestRecord]:
        q = (
            select(manifests)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == repository, manifests.c.subject_digest == digest)
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        if artifact_type:
            q = q.where(manifests.c.artifact_type == artifact_type)
        with self.db.read() as conn:
            return [_record(r) for r in conn.execute(q)]
