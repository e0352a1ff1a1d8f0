"""The jobs Dockyard runs and when: handlers over the services, and the schedules.

| kind              | does                                                        | when                          |
|-------------------|-------------------------------------------------------------|-------------------------------|
| `gc`              | garbage collection (progress: items swept; cancellable)     | every `gc.interval_seconds`, `POST /api/v1/gc` |
| `uploads.purge`   | abandoned upload sessions and stray staged data             | every `uploads.purge_interval_seconds` |
| `sessions.purge`  | expired console sessions                                    | hourly                        |
| `images.backfill` | size and platforms of manifests pushed before migration 0003 | once, at start-up            |
| `scan.image`      | scan one image manifest (an index: queue its platforms)      | on push (namespace setting), `POST …/scan` |
| `scan.reevaluate` | match every stored inventory against a new advisory database | when the database file changes (worker tick) |
| `webhook.deliver` | one attempt of a webhook delivery (retried with backoff up to 8 attempts) | per delivery: an event a webhook wants, a ping, a redelivery |
| `build.run[@labels]` | one build (git, buildah, push); on the build worker, `builds.concurrency` at a time | a provider webhook, polling, `POST …/builds` |
| `build.poll`      | `git ls-remote` of polled sources; moved refs start builds    | every `builds.poll_seconds`   |

GC takes the "gc" lease (meta/leases.py) around its run as a mutex, held by the job, so that two
GC jobs never sweep at once while a retry of the same job (its worker died) takes over at once;
scheduled and requested GCs share the unique key "gc", so at most one is queued or running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.config import Settings
from dockyard.jobs.worker import JobCancelled, JobContext, Kind, Schedule, WorkerStopping
from dockyard.management.images import ImagesService
from dockyard.meta.scans import SCAN_IMAGE
from dockyard.meta.builds import BUILD_POLL
from dockyard.meta.sessions import SessionStore
from dockyard.meta.webhooks import WEBHOOK_DELIVER
from dockyard.registry.builds import BuildHandBack, BuildService, worker_kinds
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.manifests import ManifestService
from dockyard.registry.scans import ScanService
from dockyard.registry.uploads import UploadService
from dockyard.registry.webhooks import WebhookService

GC = "gc"
UPLOAD_PURGE = "uploads.purge"
SESSION_PURGE = "sessions.purge"
IMAGE_BACKFILL = "images.backfill"
SCAN_REEVALUATE = "scan.reevaluate"


@dataclass(frozen=True)
class JobServices:
    """What the handlers work with (app.py wires it)."""
    settings: Settings
    gc: GarbageCollector
    manifests: ManifestService
    uploads: UploadService
    sessions: SessionStore
    images: ImagesService
    scans: ScanService
    webhooks: WebhookService | None = None
    builds: BuildService | None = None


def job_kinds(services: JobServices) -> list[Kind]:
    settings = services.settings

    def gc(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        done = 0

        def progress(_stage: str, n: int) -> None:
            nonlocal done
            done += n
            ctx.check()  # a cancel stops between two items: each one is its own transaction
            ctx.progress(done)

        # The lease's holder is the job, so a retry of this job (its worker died) takes it over
        # at once; it lasts as long as a job's lease, renewed as GC goes.
        report = services.gc.run_exclusive(f"job-{ctx.job.id}", dry_run=bool(args.get("dry_run", False)),
                                           delete_untagged=args.get("delete_untagged"), progress=progress,
                                           ttl_seconds=settings.jobs.lease_seconds, takeover=True)
        if report is None:  # another GC job holds the lease: try again later
            raise RuntimeError("another garbage collection is running")
        if report.manifest_count:
            services.manifests.clear_cache()
        ctx.progress(done, done, force=True)
        return report.to_json()

    def purge_uploads(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        return {"purged": services.uploads.purge(settings.uploads.purge_after_seconds)}

    def purge_sessions(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        return {"purged": services.sessions.purge_expired()}

    def backfill(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        return {"updated": services.images.backfill_all()}

    def scan(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        digest, repository = str(args["digest"]), args.get("repository")
        try:
            return services.scans.scan(digest, repository, ctx.check)
        except JobCancelled:
            services.scans.abandon(digest, repository, "the scan was cancelled")
            raise
        except WorkerStopping:
            raise  # handed back: another worker scans it
        except Exception as exc:
            if ctx.job.attempts >= ctx.job.max_attempts:
                services.scans.abandon(digest, repository, f"the scan failed: {exc}")
            raise

    def reevaluate(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        def progress(done: int) -> None:
            ctx.check()
            ctx.progress(done)

        return services.scans.reevaluate(ctx.check, progress)

    def deliver(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        assert services.webhooks is not None
        return services.webhooks.deliver(str(args["delivery"]), last_attempt=ctx.job.attempts >= ctx.job.max_attempts,
                                         manual=bool(args.get("manual")))

    return [
        *([Kind(WEBHOOK_DELIVER, deliver, backoff_seconds=30, backoff_cap=3600)] if services.webhooks else []),
        Kind(SCAN_IMAGE, scan, backoff_seconds=10),
        Kind(SCAN_REEVALUATE, reevaluate, backoff_seconds=10),
        Kind(GC, gc, backoff_seconds=60),
        Kind(UPLOAD_PURGE, purge_uploads, backoff_seconds=30),
        Kind(SESSION_PURGE, purge_sessions, backoff_seconds=30),
        Kind(IMAGE_BACKFILL, backfill, backoff_seconds=30),
    ]


def build_kinds(services: JobServices, labels: dict[str, str]) -> list[Kind]:
    """The build worker's kinds: builds for workers with (a subset of) these labels, and polling."""
    builds = services.builds
    assert builds is not None

    def run(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        def stop() -> str | None:
            if ctx.cancel.is_set():
                return "cancelled"
            if (ctx.worker.stopping.is_set() and ctx.worker.grace_over.is_set()) or ctx.lost.is_set():
                return "stopped"
            return None

        try:
            result = builds.run(int(args["build"]), ctx.job.attempts, ctx.worker.holder, stop)
        except BuildHandBack as exc:
            raise WorkerStopping(str(exc)) from None
        if result.get("status") == "cancelled":
            raise JobCancelled(f"build {args['build']} was cancelled")
        return result

    def poll(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
        return builds.poll(ctx.check)

    # A build is not retried after it failed on its own (its log says why); only a build whose
    # worker died runs again (the job's second attempt, after its lease ran out).
    return [*(Kind(kind, run, backoff_seconds=5) for kind in worker_kinds(labels)),
            Kind(BUILD_POLL, poll, backoff_seconds=30)]


def schedules(services: JobServices) -> list[Schedule]:
    settings = services.settings
    every = []
    if settings.gc.interval_seconds:
        # The first run one interval after the schedule first appears, as the timer did before.
        every.append(Schedule(GC, GC, settings.gc.interval_seconds, first_delay=settings.gc.interval_seconds, unique_key=GC))
    if settings.uploads.purge_interval_seconds:
        every.append(Schedule(UPLOAD_PURGE, UPLOAD_PURGE, settings.uploads.purge_interval_seconds,
                              first_delay=settings.uploads.purge_interval_seconds))
    every.append(Schedule(SESSION_PURGE, SESSION_PURGE, 3600, first_delay=3600))
    if services.builds is not None:
        every.append(Schedule(BUILD_POLL, BUILD_POLL, settings.builds.poll_seconds, first_delay=settings.builds.poll_seconds))
    return every
