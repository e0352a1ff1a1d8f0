"""Garbage collection while pushes go on: no read-only mode.

1. With `gc.delete_untagged`, manifests that nothing keeps are deleted: a manifest is kept when
   a tag points to it, when a kept index lists it, or when its subject is kept (signatures and
   SBOMs live as long as their image). Manifests younger than the grace period are always kept.
2. Blobs that no manifest references and that no repository linked within the grace period are
   deleted: the row and the file go in one transaction, re-checked inside it, so a manifest
   pushed meanwhile either sees the blob or fails cleanly with MANIFEST_BLOB_UNKNOWN.
3. Files in the store with no row (left by a crash) and older than the grace period are removed.

The grace period protects a blob uploaded for a manifest that has not been pushed yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.exc import IntegrityError

from dockyard.config import GcSettings
from dockyard.meta.db import Database, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import blobs, manifest_blobs, manifest_children, manifests, repository_blobs, tags
from dockyard.storage.base import BlobStore

Progress = Callable[[str, int], None]  # (stage, items done since last call)


@dataclass
class GcReport:
    dry_run: bool
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    orphan_files: int = 0
    uploads_purged: int = 0

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"{verb} {len(self.manifests)} manifest(s), {len(self.blobs)} blob(s) "
                f"({self.bytes_freed / 1048576:.1f} MiB), {self.orphan_files} orphan file(s), "
                f"{self.uploads_purged} stale upload(s)")


class GarbageCollector:
    def __init__(self, db: Database, store: BlobStore, settings: GcSettings,
                 purge_uploads: Callable[[], int] | None = None) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.purge_uploads = purge_uploads

    def run(self, dry_run: bool = False, delete_untagged: bool | None = None, progress: Progress | None = None) -> GcReport:
        report = GcReport(dry_run=dry_run)
        tick = progress or (lambda _stage, _n: None)
        cutoff = utcnow() - timedelta(seconds=self.settings.grace_seconds)
        untagged = self.settings.delete_untagged if delete_untagged is None else delete_untagged
        doomed: set[int] = set()
        if untagged:
            doomed = self._sweep_manifests(cutoff, dry_run, report, tick)
        # A dry run removes no manifest, so it must count the blobs of those it would remove.
        self._sweep_blobs(cutoff, dry_run, report, tick, doomed if dry_run else set())
        self._sweep_orphans(cutoff.timestamp(), dry_run, report, tick)
        if self.purge_uploads is not None and not dry_run:
            report.uploads_purged = self.purge_uploads()
        return report

    # -- manifests ------------------------------------------------------------------------------------
    def _unkept_manifests(self, cutoff: object) -> list[tuple[int, str]]:
        with self.db.read() as conn:
            rows = conn.execute(select(manifests.c.id, manifests.c.repository_id, manifests.c.digest,
                                       manifests.c.subject_digest, manifests.c.created_at)).all()
            tagged = set(conn.execute(select(tags.c.repository_id, tags.c.manifest_digest)).all())
            children = conn.execute(select(manifest_children.c.manifest_id, manifest_children.c.child_digest)).all()
        by_key = {(r.repository_id, r.digest): r for r in rows}
        kids: dict[int, list[str]] = {}
        for manifest_id, child in children:
            kids.setdefault(manifest_id, []).append(child)
        referrers: dict[tuple[int, str], list[object]] = {}
        for r in rows:
            if r.subject_digest:
                referrers.setdefault((r.repository_id, r.subject_digest), []).append(r)
        kept: set[tuple[int, str]] = set()
        todo = [k for k in by_key if k in tagged or by_key[k].created_at.replace(tzinfo=None) >= cutoff.replace(tzinfo=None)]  # type: ignore[attr-defined]
        while todo:
            key = todo.pop()
            if key in kept:
                continue
            kept.add(key)
            row = by_key[key]
            todo.extend((row.repository_id, c) for c in kids.get(row.id, []) if (row.repository_id, c) in by_key)
            todo.extend((key[0], ref.digest) for ref in referrers.get(key, []))  # type: ignore[attr-defined]
        return [(r.id, r.digest) for k, r in by_key.items() if k not in kept]

    def _sweep_manifests(self, cutoff: object, dry_run: bool, report: GcReport, tick: Progress) -> set[int]:
        doomed: set[int] = set()
        parent = manifests.alias("parent")
        pending = self._unkept_manifests(cutoff)
        while pending:
            blocked = []
            for manifest_id, digest in pending:
                tick("manifests", 1)
                if not dry_run:
                    with self.db.write() as conn:
                        still_untagged = ~exists().where(and_(tags.c.manifest_digest == digest,
                                                              tags.c.repository_id == manifests.c.repository_id))
                        # An index may list it (pushed since the scan, or going in this sweep: parents first).
                        no_parent = ~exists().where(and_(manifest_children.c.child_digest == digest,
                                                         manifest_children.c.manifest_id == parent.c.id,
                                                         parent.c.repository_id == manifests.c.repository_id))
                        if not conn.execute(delete(manifests).where(manifests.c.id == manifest_id, still_untagged,
                                                                    no_parent)).rowcount:
                            blocked.append((manifest_id, digest))
                            continue
                doomed.add(manifest_id)
                report.manifests.append(digest)
            pending = blocked if len(blocked) < len(pending) else []
        return doomed

    # -- blobs ----------------------------------------------------------------------------------------
    def _unreferenced(self, cutoff: object, ignore: set[int] | None = None) -> Iterator[tuple[str, int]]:
        unreferenced = and_(
            blobs.c.created_at < cutoff,
            ~exists().where(manifest_blobs.c.digest == blobs.c.digest),
            ~exists().where(and_(repository_blobs.c.digest == blobs.c.digest, repository_blobs.c.linked_at >= cutoff)),
        )
        with self.db.read() as conn:
            rows = conn.execute(select(blobs.c.digest, blobs.c.size).where(unreferenced)).all()
        yield from ((r.digest, r.size) for r in rows)
        if ignore:  # dry run: also the blobs that only the manifests in `ignore` reference
            refs: dict[tuple[str, int], set[int]] = {}
            with self.db.read() as conn:
                for r in conn.execute(select(blobs.c.digest, blobs.c.size, manifest_blobs.c.manifest_id)
                                      .join(manifest_blobs, manifest_blobs.c.digest == blobs.c.digest)
                                      .where(blobs.c.created_at < cutoff, ~exists().where(and_(
                                          repository_blobs.c.digest == blobs.c.digest, repository_blobs.c.linked_at >= cutoff)))):
                    refs.setdefault((r.digest, r.size), set()).add(r.manifest_id)
            yield from (key for key, ids in refs.items() if ids <= ignore)

    def _sweep_blobs(self, cutoff: object, dry_run: bool, report: GcReport, tick: Progress,
                     ignore: set[int] | None = None) -> None:
        for digest, size in list(self._unreferenced(cutoff, ignore)):
            tick("blobs", 1)
            if dry_run:
                report.blobs.append(digest)
                report.bytes_freed += size
                continue
            try:
                with self.db.write() as conn:
                    gone = conn.execute(delete(blobs).where(
                        blobs.c.digest == digest,
                        ~exists().where(manifest_blobs.c.digest == digest),
                        ~exists().where(and_(repository_blobs.c.digest == digest, repository_blobs.c.linked_at >= cutoff)),
                    )).rowcount
                    if gone:
                        # Inside the transaction: a concurrent upload of the same digest waits
                        # for us and then places the file again (BlobStore.place).
                        self.store.delete(digest)
            except IntegrityError:
                continue  # a manifest referenced it meanwhile (PostgreSQL foreign key): keep it
            if gone:
                report.blobs.append(digest)
                report.bytes_freed += size

    def _sweep_orphans(self, cutoff_ts: float, dry_run: bool, report: GcReport, tick: Progress) -> None:
        with self.db.read() as conn:
            known = set(conn.execute(select(blobs.c.digest)).scalars())
        for digest, mtime in list(self.store.iter_blobs()):
            tick("files", 1)
            if digest in known or mtime >= cutoff_ts:
                continue
            if not dry_run:
                with self.db.write() as conn:
                    # Re-check by claiming the digest: an upload may have recorded it since, or
                    # (PostgreSQL) hold its row uncommitted, which a SELECT would not see; the
                    # insert waits for that transaction, and one starting now waits for ours.
                    if not insert_ignore(conn, blobs, {"digest": digest, "size": 0, "created_at": utcnow()}):
                        continue
                    self.store.delete(digest)
                    conn.execute(delete(blobs).where(blobs.c.digest == digest))
            report.orphan_files += 1
