"""The queries of garbage collection (registry/gc.py decides; this module reads and deletes).

Reads stream: the mark phase loads one repository's manifests, tags and index children at a
time, blobs and store files are checked in batches by digest, so the memory GC needs is bounded
by the largest repository and the batch size, not by the registry. Every delete re-checks its
condition inside its own write transaction: what the scan saw may have changed since (a push,
a tag, an index listing a manifest), and the re-check is what keeps GC safe while pushes go on.
On PostgreSQL a manifest's re-check runs after a row lock that pushes referencing it also take
(delete_manifest_if_unkept says why), so it sees pushes still in flight on other nodes too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, select
from sqlalchemy.exc import IntegrityError

from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import blobs, manifest_blobs, manifest_children, manifests, repository_blobs, tags

BATCH = 500  # rows per read of a streamed scan; ids per IN (...) list


class GcStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- manifests: mark, one repository at a time ------------------------------------------------
    def unkept_manifests(self, cutoff: datetime) -> Iterator[tuple[int, str]]:
        """(id, digest) of every manifest nothing keeps, repository by repository. A manifest is
        kept when it is younger than `cutoff`, tagged, listed by a kept index of its repository,
        or the subject of a kept manifest (a signature lives as long as its image)."""
        after = 0
        while True:
            with self.db.read() as conn:
                ids = list(conn.execute(select(manifests.c.repository_id).distinct()
                                        .where(manifests.c.repository_id > after)
                                        .order_by(manifests.c.repository_id).limit(BATCH)).scalars())
            for repository_id in ids:
                yield from self._unkept_in(repository_id, cutoff)
            if len(ids) < BATCH:
                return
            after = ids[-1]

    def _unkept_in(self, repository_id: int, cutoff: datetime) -> list[tuple[int, str]]:
        with self.db.read() as conn:
            rows = conn.execute(select(manifests.c.id, manifests.c.digest, manifests.c.subject_digest,
                                       manifests.c.created_at).where(manifests.c.repository_id == repository_id)).all()
            tagged = set(conn.execute(select(tags.c.manifest_digest)
                                      .where(tags.c.repository_id == repository_id)).scalars())
            children = conn.execute(select(manifest_children.c.manifest_id, manifest_children.c.child_digest)
                                    .join(manifests, manifests.c.id == manifest_children.c.manifest_id)
                                    .where(manifests.c.repository_id == repository_id)).all()
        by_digest = {r.digest: r for r in rows}
        kids: dict[int, list[str]] = {}
        for manifest_id, child in children:
            kids.setdefault(manifest_id, []).append(child)
        referrers: dict[str, list[str]] = {}
        for r in rows:
            if r.subject_digest:
                referrers.setdefault(r.subject_digest, []).append(r.digest)
        limit = aware(cutoff)
        kept: set[str] = set()
        todo = [d for d, r in by_digest.items() if d in tagged or aware(r.created_at) >= limit]
        while todo:
            digest = todo.pop()
            if digest in kept:
                continue
            kept.add(digest)
            todo.extend(c for c in kids.get(by_digest[digest].id, []) if c in by_digest)
            todo.extend(referrers.get(digest, []))
        return [(r.id, d) for d, r in by_digest.items() if d not in kept]

    def delete_manifest_if_unkept(self, manifest_id: int, digest: str) -> bool:
        """Delete the manifest unless, by now, a tag points to it or an index of its repository lists
        it (pushed since the scan, or not deleted yet: parents go first). False when kept."""
        parent = manifests.alias("parent")
        still_untagged = ~exists().where(and_(tags.c.manifest_digest == digest,
                                              tags.c.repository_id == manifests.c.repository_id))
        no_parent = ~exists().where(and_(manifest_children.c.child_digest == digest,
                                         manifest_children.c.manifest_id == parent.c.id,
                                         parent.c.repository_id == manifests.c.repository_id))
        with self.db.write() as conn:
            # PostgreSQL, READ COMMITTED: a statement sees only what was committed when it began,
            # so the re-check alone misses a push that has checked this manifest and written an
            # index listing it (or a tag on it) but not committed yet. Such a push holds a KEY
            # SHARE lock on this row until it commits (ContentStore._put_manifest). Locking the
            # row FOR UPDATE first waits for every such push; the DELETE after it is a new
            # statement, with a new snapshot that includes their commits, so it sees their
            # references. A push that comes after our lock waits for our commit, and then finds
            # the manifest gone (an index fails cleanly; a tag PUT stores it again). SQLite
            # serialises writers (BEGIN IMMEDIATE), so there FOR UPDATE is left out and moot.
            if conn.execute(select(manifests.c.id).where(manifests.c.id == manifest_id).with_for_update()).first() is None:
                return False  # deleted meanwhile (by a user)
            return bool(conn.execute(delete(manifests).where(manifests.c.id == manifest_id, still_untagged,
                                                             no_parent)).rowcount)

    # -- blobs ------------------------------------------------------------------------------------
    @staticmethod
    def _unlinked(digest: ColumnElement[str] | str, cutoff: datetime) -> ColumnElement[bool]:
        """No repository linked the blob since `cutoff` (an upload or mount for a manifest to come)."""
        return ~exists().where(and_(repository_blobs.c.digest == digest, repository_blobs.c.linked_at >= cutoff))

    def unreferenced_blobs(self, cutoff: datetime) -> Iterator[tuple[str, int]]:
        """(digest, size) of blobs older than `cutoff` that no manifest references and no repository
        linked since, in digest order, a batch per read (the caller may delete as it goes)."""
        after = ""
        while True:
            q = (select(blobs.c.digest, blobs.c.size)
                 .where(blobs.c.digest > after, blobs.c.created_at < cutoff,
                        ~exists().where(manifest_blobs.c.digest == blobs.c.digest), self._unlinked(blobs.c.digest, cutoff))
                 .order_by(blobs.c.digest).limit(BATCH))
            with self.db.read() as conn:
                rows = [(r.digest, r.size) for r in conn.execute(q)]
            yield from rows
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    def blobs_only_of(self, doomed: set[int], cutoff: datetime) -> Iterator[tuple[str, int]]:
        """(digest, size) of blobs older than `cutoff`, not linked since, that manifests reference but
        only manifests in `doomed` do (a dry run's: what deleting them would free)."""
        ids = sorted(doomed)
        seen: set[str] = set()
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            with self.db.read() as conn:
                found = conn.execute(select(blobs.c.digest, blobs.c.size).distinct()
                                     .join(manifest_blobs, manifest_blobs.c.digest == blobs.c.digest)
                                     .where(manifest_blobs.c.manifest_id.in_(chunk), blobs.c.created_at < cutoff,
                                            self._unlinked(blobs.c.digest, cutoff))).all()
                fresh = [(d, size) for d, size in found if d not in seen]
                seen.update(d for d, _ in fresh)
                users: dict[str, set[int]] = {}
                for i in range(0, len(fresh), BATCH):
                    part = [d for d, _ in fresh[i:i + BATCH]]
                    for digest, manifest_id in conn.execute(select(manifest_blobs.c.digest, manifest_blobs.c.manifest_id)
                                                            .where(manifest_blobs.c.digest.in_(part))):
                        users.setdefault(digest, set()).add(manifest_id)
            yield from ((d, size) for d, size in fresh if users.get(d, set()) <= doomed)

    def delete_blobs_if_unreferenced(self, digests: list[str], cutoff: datetime,
                                     remove_files: Callable[[list[str]], None]) -> list[str]:
        """Delete the rows of those blobs that no manifest references and no repository linked
        since `cutoff`, re-checked by one DELETE in one transaction, and in that transaction their
        files (`remove_files`, S3: one DeleteObjects call per 1,000): a concurrent upload of the
        same digest waits for us and then places the file again (BlobStore.place). Returns the
        digests removed. When a manifest referenced one meanwhile (PostgreSQL's foreign key fails
        the whole statement), they are taken one at a time and that one is kept."""
        if not digests:
            return []
        try:
            with self.db.write() as conn:
                # PostgreSQL: rows a push holds right now (an upload's upsert, a manifest's foreign
                # key check) are skipped, not waited for: a batch waiting on pushes that wait on its
                # other rows would deadlock. What is skipped goes in a later run.
                free = (select(blobs.c.digest).where(blobs.c.digest.in_(digests))
                        .with_for_update(skip_locked=True).scalar_subquery())
                gone = list(conn.execute(delete(blobs).where(
                    blobs.c.digest.in_(free), ~exists().where(manifest_blobs.c.digest == blobs.c.digest),
                    self._unlinked(blobs.c.digest, cutoff)).returning(blobs.c.digest)).scalars())
                if gone:
                    remove_files(gone)
            return gone
        except IntegrityError:
            if len(digests) == 1:
                return []
            return [d for one in digests for d in self.delete_blobs_if_unreferenced([one], cutoff, remove_files)]

    # -- files without a row ----------------------------------------------------------------------
    def unknown(self, digests: Iterable[str]) -> Iterator[str]:
        """Those of `digests` that have no blob row, checked a batch at a time."""
        batch: list[str] = []
        for digest in digests:
            batch.append(digest)
            if len(batch) >= BATCH:
                yield from self._unknown(batch)
                batch = []
        if batch:
            yield from self._unknown(batch)

    def _unknown(self, batch: list[str]) -> list[str]:
        with self.db.read() as conn:
            known = set(conn.execute(select(blobs.c.digest).where(blobs.c.digest.in_(batch))).scalars())
        return [d for d in batch if d not in known]

    def delete_orphan(self, digest: str, remove_file: Callable[[str], None]) -> bool:
        """Remove a store file that has no row, unless an upload recorded the digest meanwhile."""
        with self.db.write() as conn:
            # Re-check by claiming the digest: an upload may have recorded it since, or
            # (PostgreSQL) hold its row uncommitted, which a SELECT would not see; the insert
            # waits for that transaction, and one starting now waits for ours.
            if not insert_ignore(conn, blobs, {"digest": digest, "size": 0, "created_at": utcnow()}):
                return False
            remove_file(digest)
            conn.execute(delete(blobs).where(blobs.c.digest == digest))
        return True
