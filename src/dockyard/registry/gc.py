"""Garbage collection while pushes go on: no read-only mode.

1. With `gc.delete_untagged`, manifests that nothing keeps are deleted: a manifest is kept when
   a tag points to it, when a kept index lists it, or when its subject is kept (signatures and
   SBOMs live as long as their image). Manifests younger than the grace period are always kept.
2. Blobs that no manifest references and that no repository linked within the grace period are
   deleted: the row and the file go in one transaction, re-checked inside it, so a manifest
   pushed meanwhile either sees the blob or fails cleanly with MANIFEST_BLOB_UNKNOWN.
3. Files in the store with no row (left by a crash) and older than the grace period are removed.

The grace period protects a blob uploaded for a manifest that has not been pushed yet.

With several nodes on one database, GC is a scheduled job (jobs/kinds.py), enqueued once per
interval cluster-wide; `run_exclusive` holds a lease (meta/leases.py) while it sweeps, so that no
two runs overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dockyard.config import GcSettings
from dockyard.meta.db import Database, utcnow
from dockyard.meta.gc import GcStore
from dockyard.meta.leases import Lease, LeaseStore, once
from dockyard.storage.base import BlobStore

Progress = Callable[[str, int], None]  # (stage, items done since last call)

GC_LEASE = "gc"


KEEP_DIGESTS = 10000  # digests a report lists; beyond that it counts (a million blobs: no 100 MB list)


@dataclass
class GcReport:
    dry_run: bool
    manifests: list[str] = field(default_factory=list)  # the first KEEP_DIGESTS removed
    blobs: list[str] = field(default_factory=list)  # the first KEEP_DIGESTS removed
    manifest_count: int = 0
    blob_count: int = 0
    bytes_freed: int = 0
    orphan_files: int = 0
    uploads_purged: int = 0

    def removed_manifest(self, digest: str) -> None:
        self.manifest_count += 1
        if len(self.manifests) < KEEP_DIGESTS:
            self.manifests.append(digest)

    def removed_blobs(self, digests: list[str]) -> None:
        self.blob_count += len(digests)
        self.blobs.extend(digests[:max(0, KEEP_DIGESTS - len(self.blobs))])

    def to_json(self) -> dict[str, object]:
        """What a GC job records as its result (counts, not every digest)."""
        return {"dry_run": self.dry_run, "manifests": self.manifest_count, "blobs": self.blob_count,
                "bytes_freed": self.bytes_freed, "orphan_files": self.orphan_files, "uploads_purged": self.uploads_purged}

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"{verb} {self.manifest_count} manifest(s), {self.blob_count} blob(s) "
                f"({self.bytes_freed / 1048576:.1f} MiB), {self.orphan_files} orphan file(s), "
                f"{self.uploads_purged} stale upload(s)")


class GarbageCollector:
    def __init__(self, db: Database, store: BlobStore, settings: GcSettings,
                 purge_uploads: Callable[[], int] | None = None) -> None:
        self.meta = GcStore(db)
        self.leases = LeaseStore(db)
        self.store = store
        self.settings = settings
        self.purge_uploads = purge_uploads

    def run_exclusive(self, holder: str, dry_run: bool = False, delete_untagged: bool | None = None,
                      progress: Progress | None = None, ttl_seconds: int = 3600, takeover: bool = False) -> GcReport | None:
        """`run()` while holding the lease "gc" (meta/leases.py), so that no two collections
        sweep at once anywhere in the cluster (the GC job, jobs/kinds.py); None when another
        holds it. `holder` names who runs it (the GC job); with `takeover` the same holder takes
        a lease it still holds (a retry of a job whose worker died). The lease lasts `ttl_seconds`
        and is renewed as the sweeps go on, so a long GC keeps it and one that dies mid-run
        blocks GC for that long at most."""
        tick = progress or (lambda _stage, _n: None)

        def collect(lease: Lease) -> GcReport:
            def renewing(stage: str, n: int) -> None:
                tick(stage, n)
                lease.renew()

            return self.run(dry_run=dry_run, delete_untagged=delete_untagged, progress=renewing)

        return once(self.leases, GC_LEASE, holder, 0, collect, ttl_seconds=ttl_seconds, takeover=takeover)

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
    def _unkept_manifests(self, cutoff: datetime) -> list[tuple[int, str]]:
        """The candidates (id, digest): marked one repository at a time (meta/gc.py), so only what
        may go is held here, not every manifest, tag and index child of the registry."""
        return list(self.meta.unkept_manifests(cutoff))

    def _sweep_manifests(self, cutoff: datetime, dry_run: bool, report: GcReport, tick: Progress) -> set[int]:
        doomed: set[int] = set()
        pending = self._unkept_manifests(cutoff)
        while pending:
            blocked = []
            for manifest_id, digest in pending:
                tick("manifests", 1)
                # Re-checked in the delete: a tag or index pushed since the scan keeps it, and an
                # index going in this sweep blocks its children until it is gone (next round).
                if not dry_run and not self.meta.delete_manifest_if_unkept(manifest_id, digest):
                    blocked.append((manifest_id, digest))
                    continue
                doomed.add(manifest_id)
                report.removed_manifest(digest)
            pending = blocked if len(blocked) < len(pending) else []
        return doomed

    # -- blobs ----------------------------------------------------------------------------------------
    def _unreferenced(self, cutoff: datetime, ignore: set[int] | None = None) -> Iterator[tuple[str, int]]:
        """Blobs to remove, streamed: unreferenced ones, and in a dry run also those that only the
        manifests in `ignore` (the ones it would have removed) reference."""
        yield from self.meta.unreferenced_blobs(cutoff)
        if ignore:
            yield from self.meta.blobs_only_of(ignore, cutoff)

    def _sweep_blobs(self, cutoff: datetime, dry_run: bool, report: GcReport, tick: Progress,
                     ignore: set[int] | None = None) -> None:
        batch: dict[str, int] = {}

        def sweep() -> None:
            # Re-checked and deleted a batch per transaction (rows and files), not one by one:
            # a million unreferenced blobs take minutes, not hours (BENCHMARKS.md, issue 10).
            gone = list(batch) if dry_run else self.meta.delete_blobs_if_unreferenced(list(batch), cutoff,
                                                                                      self.store.delete_many)
            report.removed_blobs(gone)
            report.bytes_freed += sum(batch[d] for d in gone)
            tick("blobs", len(batch))  # after the batch: progress counts what is done
            batch.clear()

        for digest, size in self._unreferenced(cutoff, ignore):
            batch[digest] = size
            if len(batch) >= self.settings.batch_size:
                sweep()
        if batch:
            sweep()

    def _remove(self, digest: str) -> None:
        self.store.delete_many([digest])

    def _sweep_orphans(self, cutoff_ts: float, dry_run: bool, report: GcReport, tick: Progress) -> None:
        def old_files() -> Iterator[str]:
            for digest, mtime in self.store.iter_blobs():
                tick("files", 1)
                if mtime < cutoff_ts:  # younger ones may be uploads about to record their row
                    yield digest

        for digest in self.meta.unknown(old_files()):
            if dry_run or self.meta.delete_orphan(digest, self._remove):
                report.orphan_files += 1
