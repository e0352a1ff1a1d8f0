"""The composition root: Settings in, a ready ASGI application out. The only place that picks
implementations and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from dockyard import __version__
from dockyard.api.credentials import apply_forwarded, parse_networks
from dockyard.api.distribution.access import Gate
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.router import RegistryAPI
from dockyard.api.management.builds import BuildEndpoints
from dockyard.api.management.routes import ManagementAPI
from dockyard.api.search import StarEndpoints, search_route
from dockyard.api.management.scans import ScanEndpoints
from dockyard.api.management.webhooks import WebhookEndpoints
from dockyard.api.token import TokenEndpoint
from dockyard.auth.service import ACCESS_CACHE_SECONDS, AuthService
from dockyard.auth.keyfiles import load_or_create_secrets_key
from dockyard.auth.tokens import TokenService, load_or_create_key
from dockyard.config import Settings
from dockyard.core.access import namespace_of
from dockyard.core import webhooks as wh
from dockyard.core.events import AUDIT_ACTIONS, MANIFEST_PUSHED, Event
from dockyard.core.secretbox import SecretBox
from dockyard.management.images import ImagesService
from dockyard.management.jobs import JobsService
from dockyard.management.scans import ScansService
from dockyard.management.service import ManagementService
from dockyard.meta.audit import AuditStore
from dockyard.meta.builds import BuildStore
from dockyard.meta.content import ContentStore
from dockyard.meta.credentials import CredentialStore
from dockyard.meta.db import Database
from dockyard.meta.events import EventStore, Subscriber
from dockyard.jobs.kinds import GC, IMAGE_BACKFILL, SCAN_REEVALUATE, JobServices, build_kinds, job_kinds, schedules
from dockyard.jobs.worker import Schedule, Worker
from dockyard.meta.jobs import JobStore
from dockyard.meta.leases import node_holder
from dockyard.meta.namespaces import NamespaceStore
from dockyard.meta.queries import ManagementQueries
from dockyard.meta.scans import ScanStore
from dockyard.meta.search import SearchStore
from dockyard.meta.sessions import SessionStore
from dockyard.meta.uploads import UploadStore
from dockyard.meta.users import UserStore
from dockyard.meta.versions import VersionStore
from dockyard.meta.webhooks import WebhookStore
from dockyard.outbound.client import OutboundClient
from dockyard.registry.activity import Activity
from dockyard.registry.blobs import BlobService
from dockyard.registry.builds import BuildService, PushTarget
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.manifests import ManifestService
from dockyard.registry.scans import PullGuard, ScanService, vulndb_report
from dockyard.registry.uploads import UploadService
from dockyard.registry.webhooks import USER_AGENT, WebhookService
from dockyard.storage.base import BlobStore
from dockyard.web.routes import console_routes

log = logging.getLogger("dockyard")


@dataclass
class Services:
    settings: Settings
    db: Database
    users: UserStore
    content: ContentStore
    auth: AuthService
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    gc: GarbageCollector
    namespaces: NamespaceStore
    credentials: CredentialStore
    audit: AuditStore
    activity: Activity
    sessions: SessionStore
    jobs: JobStore
    events: EventStore
    scan_store: ScanStore
    webhooks: WebhookService
    builds: BuildService = field(init=False)
    management: ManagementService = field(init=False)
    images: ImagesService = field(init=False)
    scans: ScanService = field(init=False)
    pull_guard: PullGuard = field(init=False)
    scan_reports: ScansService = field(init=False)


def open_store(settings: Settings, durable_dirs: bool, cache: bool = True) -> BlobStore:
    """The configured blob store. `durable_dirs`: fsync directories after a rename (fs), for a
    database that keeps every committed row through a power loss (PostgreSQL). `cache`: this
    node's copy of hot blobs in front of a shared store (`storage.cache_gib`)."""
    storage = settings.storage
    if storage.driver == "s3":
        from dockyard.storage.s3 import S3BlobStore

        s3 = storage.s3
        shared = S3BlobStore(
            bucket=s3.bucket, endpoint=s3.endpoint, region=s3.region, access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
            path_style=s3.path_style, prefix=s3.prefix, part_size=s3.part_size_mib << 20,
            presign_ttl=s3.presign_ttl_seconds)
        if not cache or storage.cache_gib <= 0 or storage.redirect:
            return shared
        from dockyard.storage.cache import BlobCache, CachedStore

        cache = BlobCache((storage.cache_dir or settings.data_dir / "blob-cache").resolve(), int(storage.cache_gib * (1 << 30)))
        return CachedStore(shared, cache)
    from dockyard.storage.fs import FsBlobStore

    return FsBlobStore(settings.blob_root, settings.upload_root, fsync=storage.fsync, fsync_dirs=durable_dirs)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, settings.database.pool_size)
    store = open_store(settings, durable_dirs=not db.is_sqlite)
    # Process-local caches are exact only when this process sees every write: one process on
    # SQLite (which one machine only can use). With PostgreSQL other nodes may write: no caches.
    single_process = settings.server.workers == 1 and db.is_sqlite
    users = UserStore(db)
    content = ContentStore(db, cache_repository_ids=single_process)
    namespaces = NamespaceStore(db)
    credentials = CredentialStore(db)
    audit = AuditStore(db)
    tokens = TokenService(load_or_create_key(settings.key_path), settings.auth.issuer, settings.auth.service,
                          settings.auth.token_ttl_seconds, settings.auth.refresh_ttl_seconds)
    uploads = UploadService(UploadStore(db), content, store, exclusive=single_process)
    jobs = JobStore(db)
    events = EventStore(db, jobs)
    # Who hears of each event (core/events.py): the audit log, in the dispatcher's transaction.
    events.subscribers.append(Subscriber("audit", frozenset(k for k, a in AUDIT_ACTIONS.items() if a),
                                         inline=AuditStore.record_event))
    scan_store = ScanStore(db, jobs)
    if settings.scan.enabled:
        # Scan on push: queued in the dispatcher's transaction, when the namespace asks for it.
        events.subscribers.append(Subscriber("scan on push", frozenset({MANIFEST_PUSHED}),
                                             inline=lambda conn, event: scan_on_push(scan_store, conn, event)))
    # Webhooks: a delivery and its job per matching webhook, in the dispatcher's transaction.
    # Their signing secrets are sealed with the secrets key; their requests go through the guard.
    outbound = settings.outbound
    box = SecretBox(load_or_create_secrets_key(settings.secrets_key_path))
    webhooks = WebhookService(WebhookStore(db, jobs), box,
                              OutboundClient(outbound.allowed_networks, outbound.timeout_seconds, user_agent=USER_AGENT),
                              public_links(settings))
    events.subscribers.append(Subscriber("webhooks", wh.SOURCES, inline=webhooks.on_event))
    services = Services(
        settings=settings,
        db=db,
        users=users,
        content=content,
        auth=AuthService(users, tokens, namespaces, credentials, settings.auth.account_password_for_registry,
                         access_cache_seconds=ACCESS_CACHE_SECONDS if single_process else 0.0),
        namespaces=namespaces,
        credentials=credentials,
        audit=audit,
        activity=Activity(audit),
        sessions=SessionStore(db),
        jobs=jobs,
        events=events,
        blobs=BlobService(content, store, redirect=settings.storage.redirect),
        uploads=uploads,
        manifests=ManifestService(content, store, settings.limits.manifest_max_bytes, cache=single_process),
        gc=GarbageCollector(db, store, settings.gc, lambda: uploads.purge(settings.uploads.purge_after_seconds)),
        scan_store=scan_store,
        webhooks=webhooks,
    )
    services.builds = BuildService(settings, BuildStore(db, jobs), events, box, services.auth.build_credential,
                                   push_target(settings))
    services.scans = ScanService(settings=settings, store=scan_store, content=content, manifests=services.manifests,
                                 uploads=uploads, blobs=store, events=events)
    services.pull_guard = PullGuard(scan_store, lambda repository, digest: console_link(settings, repository, digest))
    services.scan_reports = ScansService(store=scan_store, content=content, manifests=services.manifests,
                                         auth=services.auth, namespaces=namespaces, guard=services.pull_guard,
                                         audit=audit)

    def repositories_deleted(names: list[str]) -> None:
        # The registry's caches remember repositories by name: forget them all (rare, cheap).
        if names:
            services.manifests.clear_cache()
            services.content._repo_ids.clear()

    services.management = ManagementService(
        users=users, namespaces=namespaces, credentials=credentials, audit=audit, auth=services.auth,
        queries=ManagementQueries(db), temp_password_ttl=settings.auth.temp_password_ttl_seconds,
        repositories_deleted=repositories_deleted, logins_ended=services.sessions.end_for_user,
        dispatch_events=events.dispatch_all, webhooks=webhooks, builds=services.builds, search=SearchStore(db))
    services.images = ImagesService(
        content=content, manifests=services.manifests, versions=VersionStore(db), auth=services.auth,
        activity_flush=services.activity.flush)
    return services


def scan_on_push(store: ScanStore, conn: Any, event: Event) -> None:
    detail = event.detail
    if event.repository is None or detail.get("subject") or not isinstance(detail.get("digest"), str):
        return  # referrers (signatures, SBOMs, the scanner's own) are not images to scan
    if store.policy_in(conn, namespace_of(event.repository)).scan_on_push:
        store.queue(conn, detail["digest"], event.repository)


def reevaluate_if_changed(services: Services) -> None:
    if services.settings.scan.enabled and services.scans.database_changed():
        services.jobs.submit(SCAN_REEVALUATE, unique_key=SCAN_REEVALUATE)


def console_link(settings: Settings, repository: str, digest: str) -> str:
    return f"{settings.base_url}/console/repo/{repository}/-/versions/{digest}/security"


def public_links(settings: Settings) -> wh.Links:
    """This registry's address in webhook payloads: server.public_url, else the listen address."""
    from urllib.parse import urlsplit

    base = settings.base_url
    return wh.Links(registry=urlsplit(base).netloc or settings.server.listen, base_url=base)


def push_target(settings: Settings) -> PushTarget:
    """Where builds push: server.public_url's host, else the listen address (loopback for an
    address that listens on every interface)."""
    from urllib.parse import urlsplit

    if settings.server.public_url:
        url = urlsplit(settings.server.public_url)
        return PushTarget(url.netloc, url.scheme == "https")
    host, _, port = settings.server.listen.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}.get(host, host)
    return PushTarget(f"{host}:{port}", False)


def job_services(services: Services) -> JobServices:
    """What the job handlers work with (jobs/kinds.py), from the services."""
    return JobServices(settings=services.settings, gc=services.gc, manifests=services.manifests,
                       uploads=services.uploads, sessions=services.sessions, images=services.images,
                       scans=services.scans, webhooks=services.webhooks, builds=services.builds)


def make_worker(services: Services, holder: str, concurrency: int) -> Worker:
    """The job worker of a process (`dockyard serve`'s embedded one, or `dockyard worker`). With
    concurrency 0 it runs no job but still does the node's part: schedules, reclaiming dead
    workers' jobs, and the node-local ticks (flushing buffered pull counts)."""
    settings = services.settings
    wired = job_services(services)
    # Facts (size, platform) of manifests pushed before migration 0003: once per installation.
    once = Schedule(IMAGE_BACKFILL, IMAGE_BACKFILL, 10 * 365 * 86400, unique_key=IMAGE_BACKFILL)
    return Worker(
        services.jobs, job_kinds(wired) if concurrency else [], holder, concurrency=concurrency,
        lease_seconds=settings.jobs.lease_seconds, poll_seconds=settings.jobs.poll_seconds,
        grace_seconds=settings.jobs.grace_seconds, retention_seconds=settings.jobs.retention_seconds,
        schedules=[*schedules(wired), once],
        # Every node flushes its own pull counts and dispatches whatever events are pending
        # (meta/events.py: nodes take different batches), and purges old ones now and then.
        ticks=[("activity flush", 1.0, services.activity.flush), ("events", 0.5, lambda: services.events.dispatch_all(0)),
               ("events purge", 3600.0, lambda: services.events.purge(settings.jobs.retention_seconds)),
               ("webhook deliveries purge", 3600.0,
                lambda: services.webhooks.store.purge(settings.jobs.retention_seconds)),
               # A new advisory database (`dockyard vulndb import|update`): re-evaluate stored images.
               ("advisory database", 5.0, lambda: reevaluate_if_changed(services)),
               # Builds whose job ended without them (their worker died in the last attempt).
               ("stranded builds", 5.0, services.builds.fail_stranded),
               ("build hook deliveries purge", 3600.0,
                lambda: services.builds.store.purge_deliveries(settings.jobs.retention_seconds)),
               ("builds purge", 3600.0, lambda: services.builds.store.purge(settings.builds.retention_days * 86400))],
        listen_url=services.db.listen_url())


def make_build_worker(services: Services, holder: str, labels: dict[str, str] | None = None) -> Worker | None:
    """The node's build worker: `builds.concurrency` builds at once, apart from the other jobs
    (a long build never holds a slot GC or a webhook delivery needs); None with builds off."""
    settings = services.settings
    if not settings.builds.enabled:
        return None
    wired = job_services(services)
    return Worker(services.jobs, build_kinds(wired, {**settings.jobs.labels, **(labels or {})}), f"{holder}/b"[:64],
                  concurrency=settings.builds.concurrency, lease_seconds=settings.jobs.lease_seconds,
                  poll_seconds=settings.jobs.poll_seconds, grace_seconds=settings.jobs.grace_seconds,
                  retention_seconds=settings.jobs.retention_seconds, listen_url=services.db.listen_url())


def create_app(settings: Settings, services: Services | None = None) -> "DockyardApp":
    services = services or build_services(settings)
    ctx = RegistryContext(
        settings=settings,
        gate=Gate(services.auth, settings.auth, settings.server.public_url, settings.server.listen),
        blobs=services.blobs,
        uploads=services.uploads,
        manifests=services.manifests,
        activity=services.activity,
        pull_guard=services.pull_guard if settings.scan.enabled else None,
    )
    token = TokenEndpoint(services.auth, settings.auth.service)

    async def index(_: Request) -> Response:
        return PlainTextResponse(f"Dockyard {__version__}: container image registry. API at /v2/.\n")

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        uploads = settings.uploads
        loop = asyncio.get_running_loop()
        # At startup a single process on SQLite (so alone with its staging) has no upload in
        # flight: a staging file without a session (a monolithic upload cut short by a crash) is
        # garbage now, not in ten minutes. With PostgreSQL other nodes may be mid-upload, so only
        # what is stale by age goes, as in the periodic purge (a job, jobs/kinds.py).
        alone = settings.server.workers == 1 and services.db.is_sqlite and not services.blobs.store.shared
        startup_purge = lambda: services.uploads.purge(uploads.purge_after_seconds, 0 if alone else 600)  # noqa: E731
        await loop.run_in_executor(None, startup_purge)
        # Background work is jobs (jobs/kinds.py), run by this process's worker unless
        # `jobs.embedded_worker` is off (then `dockyard worker` processes run them).
        holder = node_holder()
        worker = make_worker(services, holder, settings.jobs.concurrency if settings.jobs.embedded_worker else 0)
        builder = make_build_worker(services, holder) if settings.jobs.embedded_worker else None
        for w in (worker, builder):
            if w is not None:
                w.start()
        try:
            yield
        finally:
            if builder is not None:
                await loop.run_in_executor(None, builder.stop)
            await loop.run_in_executor(None, worker.stop)
            await loop.run_in_executor(None, services.activity.flush)
            await loop.run_in_executor(None, services.events.dispatch_all)
            close = getattr(services.blobs.store, "close", None)
            if close is not None:  # the node's blob cache (storage/cache.py)
                close()

    jobs_service = JobsService(services.jobs, services.audit, gc_kind=GC)
    if settings.console.enabled:
        console = console_routes(settings, services.auth, services.sessions, services.management, services.images,
                                 jobs_service, services.scan_reports,
                                 lambda: vulndb_report(settings, services.scan_store))
    else:
        console = [Route("/", index)]
    web = Starlette(
        routes=[
            *console,
            Route("/healthz", health),
            Route("/auth/token", token.handle, methods=["GET", "POST"]),
            Mount("/api/v1", routes=ManagementAPI(services.management, services.auth, jobs_service, ScanEndpoints(
                services.scan_reports, lambda: vulndb_report(settings, services.scan_store)),
                WebhookEndpoints(services.management), BuildEndpoints(services.management, services.builds),
                StarEndpoints(services.management)).routes()),
            search_route(services.management, services.auth),
        ],
        lifespan=lifespan,
    )
    return DockyardApp(RegistryAPI(ctx), web, services)


class DockyardApp:
    """Sends /v2 straight to the registry router (the hot path: no middleware stack) and
    everything else to the Starlette app."""

    def __init__(self, registry: RegistryAPI, web: Starlette, services: Services) -> None:
        self.registry = registry
        self.web = web
        self.services = services
        self.proxies = parse_networks(services.settings.server.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxies:  # the one place X-Forwarded-* are read (only from trusted proxies)
            apply_forwarded(scope, self.proxies)
        if scope["type"] == "http" and scope["path"].startswith("/v2"):
            await self.registry(scope, receive, send)
        else:
            await self.web(scope, receive, send)


def app_from_environment() -> DockyardApp:
    """Factory for worker processes: `dockyard serve` passes the resolved settings in the environment."""
    import os

    from dockyard.config import settings_from_json

    settings = settings_from_json(os.environ["DOCKYARD_RESOLVED_SETTINGS"])
    logging.basicConfig(level=settings.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)
