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
from dockyard.core.image import ImageFacts
from dockyard.core.manifest import ParsedManifest
from dockyard.meta.db import Database, utcnow
from dockyard.meta.sql import insert_ignore, upsert
from dockyard.meta.tables import (
    blobs,
    manifest_blobs,
    manifest_children,
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


def _ensure_repo(conn: Connection, name: str) -> int:
    repo_id = _repo_id(conn, name)
    if repo_id is None:
        # The access policy decided that this push may create the repository (and, for an
        # administrator, its namespace): a new namespace is private and lets pushes create.
        insert_ignore(conn, namespaces, {"name": namespace_of(name), "public": False, "auto_create": True,
                                         "created_at": utcnow()})
        insert_ignore(conn, repositories, {"name": name, "created_at": utcnow()})
        repo_id = _repo_id(conn, name)
    assert repo_id is not None
    return repo_id


_DELETE_SESSION = delete(upload_sessions).where(upload_sessions.c.id == bindparam("id"))


class ContentStore:
    def __init__(self, db: Database, cache_repository_ids: bool = True) -> None:
        self.db = db
        # name -> id, saving a SELECT in every push transaction. Repositories are never renamed;
        # a deletion made in this process clears the cache (app.py), so it is only used when this
        # process sees every deletion: one worker.
        self.cache_repository_ids = cache_repository_ids
        self._repo_ids: dict[str, int] = {}

    def _repo(self, conn: Connection, name: str) -> int:
        repo_id = self._repo_ids.get(name)
        if repo_id is None:
            repo_id = _repo_id(conn, name)
            if repo_id is None:  # created by this transaction, which may yet roll back: not cached
                repo_id = _ensure_repo(conn, name)
            elif self.cache_repository_ids:  # committed earlier: safe to remember
                self._repo_ids[name] = repo_id
        return repo_id

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
                 end_session: str | None = None) -> None:
        """Record a blob and make it readable through `repository`; `place` puts its bytes in
        the store inside the same transaction (after the row is locked), see BlobStore.place.
        `end_session` names the upload session that this completes, deleted in the same transaction."""
        now = utcnow()
        with self.db.write() as conn:
            repo_id = self._repo(conn, repository)
            insert_ignore(conn, blobs, {"digest": digest, "size": size, "created_at": now})
            place()
            if end_session is not None:
                conn.execute(_DELETE_SESSION, {"id": end_session})
            upsert(conn, repository_blobs, {"repository_id": repo_id, "digest": digest, "linked_at": now},
                   ["repository_id", "digest"], ["linked_at"])

    def link_blob(self, repository: str, digest: str, source: str | None) -> bool:
        """Cross-repository mount. With `source`, only from that repository; without, from any."""
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
            repo_id = _ensure_repo(conn, repository)
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

    def unlink_blob(self, repository: str, digest: str) -> bool:
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            res = conn.execute(
                delete(repository_blobs).where(repository_blobs.c.repository_id == repo_id, repository_blobs.c.digest == digest)
            )
            return res.rowcount > 0

    # -- manifests ------------------------------------------------------------------------------
    def put_manifest(
        self, repository: str, digest: str, size: int, parsed: ParsedManifest, tag_names: Sequence[str],
        place: Callable[[], None], facts: ImageFacts | None = None,
    ) -> None:
        """Record a manifest and point each of `tag_names` at it (all in one transaction: a push by
        digest with `?tag=` parameters tags all or nothing); `place` stores its bytes inside it.

        `facts` are an image's stored facts (core/image.py; without them they stay NULL for
        the backfill); an index's size is summed here from its children's rows.
        Raises ManifestBlobUnknown when a referenced blob or child manifest is not in the repository.
        """
        try:
            self._put_manifest(repository, digest, size, parsed, tag_names, place, facts)
        except IntegrityError:
            # PostgreSQL: garbage collection removed a referenced blob between our check and our
            # insert; the foreign key caught it. The client pushes the blob again.
            raise ManifestBlobUnknown("a referenced blob was removed while the manifest was pushed; push it again") from None

    def _put_manifest(
        self, repository: str, digest: str, size: int, parsed: ParsedManifest, tag_names: Sequence[str],
        place: Callable[[], None], facts: ImageFacts | None,
    ) -> None:
        now = utcnow()
        with self.db.write() as conn:
            repo_id = self._repo(conn, repository)
            needed = {d.digest for d in parsed.blob_references()}
            if needed:
                have = set(
                    conn.execute(
                        select(repository_blobs.c.digest).where(
                            repository_blobs.c.repository_id == repo_id, repository_blobs.c.digest.in_(needed)
                        )
                    ).scalars()
                )
                missing = sorted(needed - have)
                if missing:
                    raise ManifestBlobUnknown(f"blob {missing[0]} is not in repository {repository}", {"digest": missing[0]})
            children = {d.digest for d in parsed.manifests}
            if parsed.is_index:
                facts = ImageFacts(None, size, None)
            if children:
                sizes: dict[str, int | None] = {
                    d: s for d, s in conn.execute(
                        select(manifests.c.digest, manifests.c.image_size)
                        .where(manifests.c.repository_id == repo_id, manifests.c.digest.in_(children))
                    )
                }
                missing = sorted(children - sizes.keys())
                if missing:
                    raise ManifestBlobUnknown(
                        f"manifest {missing[0]} is not in repository {repository}", {"digest": missing[0]}
                    )
                # An index weighs its own bytes and its children's (each once); unknown if one is.
                known = [s for s in sizes.values() if s is not None]
                facts = ImageFacts(None, size + sum(known) if len(known) == len(sizes) else None, None)
            # The manifest's own bytes are a blob too (kind: self), so GC treats them uniformly.
            insert_ignore(conn, blobs, {"digest": digest, "size": size, "created_at": now})
            place()
            inserted = insert_ignore(
                conn,
                manifests,
                {
                    "repository_id": repo_id,
                    "digest": digest,
                    "media_type": parsed.media_type,
                    "size": size,
                    "artifact_type": parsed.effective_artifact_type(),
                    "subject_digest": parsed.subject.digest if parsed.subject else None,
                    "annotations": json.dumps(parsed.annotations) if parsed.annotations else None,
                    "created_at": now,
                    "config_digest": facts.config_digest if facts else None,
                    "image_size": facts.image_size if facts else None,
                    "platform": facts.platform if facts else None,
                },
            )
            if inserted:
                manifest_id = conn.execute(
                    select(manifests.c.id).where(manifests.c.repository_id == repo_id, manifests.c.digest == digest)
                ).scalar_one()
                for blob_digest in needed | {digest}:
                    insert_ignore(conn, manifest_blobs, {"manifest_id": manifest_id, "digest": blob_digest})
                for child in children:
                    insert_ignore(conn, manifest_children, {"manifest_id": manifest_id, "child_digest": child})
            for tag in tag_names:
                upsert(conn, tags, {"repository_id": repo_id, "name": tag, "manifest_digest": digest, "updated_at": now},
                       ["repository_id", "name"], ["manifest_digest", "updated_at"])
            conn.execute(update(repositories).where(repositories.c.id == repo_id).values(last_push_at=now))

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

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest, and with it every tag that points to it."""
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            conn.execute(delete(tags).where(tags.c.repository_id == repo_id, tags.c.manifest_digest == digest))
            res = conn.execute(delete(manifests).where(manifests.c.repository_id == repo_id, manifests.c.digest == digest))
            return res.rowcount > 0

    def delete_tag(self, repository: str, tag: str) -> bool:
        with self.db.write() as conn:
            repo_id = _repo_id(conn, repository)
            if repo_id is None:
                return False
            return conn.execute(delete(tags).where(tags.c.repository_id == repo_id, tags.c.name == tag)).rowcount > 0

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
