"""The `dockyard` command: serve, check-config, migrate, user, gc."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from dockyard import __version__
from dockyard.config import Settings, load_settings, settings_to_json

ENV_RESOLVED = "DOCKYARD_RESOLVED_SETTINGS"


def _load(ctx: click.Context, **overrides: Any) -> Settings:
    config = ctx.obj.get("config")
    flags = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(config, **flags)
    except ValidationError as exc:
        raise click.ClickException(_explain(exc)) from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(str(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling; see the README's settings table)"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def _services(settings: Settings, long_running: bool = False) -> Any:
    from dockyard.app import build_services
    from dockyard.meta.migrate import upgrade, upgrade_apart

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = build_services(settings)
    (upgrade_apart if long_running else upgrade)(services.db)
    _prepare_store(services)
    return services


def _prepare_store(services: Any) -> None:
    """An S3 store: create the bucket when it does not exist, and make sure no other installation
    (another database) uses it: that one's GC would delete our blobs, ours theirs."""
    from dockyard.meta.cluster import ClusterFacts
    from dockyard.registry.cluster import StoreInUse, check_owner
    from dockyard.storage.cache import CachedStore
    from dockyard.storage.s3 import S3BlobStore

    store = services.blobs.store
    if isinstance(store, CachedStore):
        store = store.store
    if not isinstance(store, S3BlobStore):
        return
    store.ensure_bucket()
    try:
        check_owner(store, ClusterFacts(services.db), claim=True)
    except StoreInUse as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", type=click.Path(path_type=Path, dir_okay=False), envvar="DOCKYARD_CONFIG",
              help="YAML config file (settings: see README). Environment: DOCKYARD_CONFIG.")
@click.version_option(__version__, prog_name="dockyard")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Dockyard: a self-hosted OCI / Docker container image registry."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.command()
@click.option("--listen", help="HOST:PORT to listen on [default: 127.0.0.1:5000].")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), help="Data directory [default: ./data].")
@click.pass_context
def serve(ctx: click.Context, listen: str | None, data_dir: Path | None) -> None:
    """Run the registry (migrates the database and creates the admin user on first start)."""
    overrides: dict[str, Any] = {"data_dir": data_dir}
    if listen:
        overrides["server"] = {**_load(ctx).server.model_dump(), "listen": listen}
    settings = _load(ctx, **overrides)
    _tune_malloc()
    logging.basicConfig(level=settings.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    services = _services(settings, long_running=True)
    _bootstrap_admin(settings, services)
    services.db.dispose()
    worker_settings = settings.model_copy(update={"admin_password": None})
    os.environ[ENV_RESOLVED] = settings_to_json(worker_settings)
    click.echo(f"Dockyard {__version__} listening on http://{settings.server.listen} (data: {settings.data_dir.resolve()})", err=True)
    if settings.console.enabled:
        click.echo(f"Web console: http://{settings.server.listen}/ (log in as admin)", err=True)
    _run_server(settings)


def _tune_malloc() -> None:
    """glibc: two arenas, and request-body chunks served from the heap rather than mmap.

    granian hands each ~400 KiB body chunk to Python as a new bytes object. Under an mmap
    threshold below that size (glibc starts at 128 KiB; we had pinned it at 256 KiB) each chunk
    was mmap'd and munmap'd on its own, and every fresh page faulted and was zeroed by the
    kernel: 1,100 mmap/munmap pairs per 512 MiB push, and most of the push's CPU time in the
    kernel. From the heap the same memory is reused (measured here: 512 MiB pushes went from
    ~250 to ~650 MiB/s, kernel time from ~1.6 s to ~0.4 s). The threshold is pinned rather than
    left to glibc's adaptive rule so the behaviour does not depend on what was freed first."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD: request-body chunks (~400 KiB) reuse heap
        libc.mallopt(-1, 16 << 20)  # M_TRIM_THRESHOLD: keep up to 16 MiB free before trimming
    except (OSError, AttributeError):
        pass


def _bootstrap_admin(settings: Settings, services: Any) -> None:
    from dockyard.auth.passwords import hash_password

    if services.users.count() > 0:
        return
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    password = given or secrets.token_urlsafe(18)
    services.users.create("admin", hash_password(password), is_admin=True)
    if given:
        click.echo("Created user 'admin' with the password from DOCKYARD_ADMIN_PASSWORD.", err=True)
    else:
        click.echo(f"Created user 'admin' with password: {password}\n(shown once; change it with `dockyard user passwd admin`)", err=True)


def _run_server(settings: Settings) -> None:
    server = settings.server
    target = "dockyard.app:app_from_environment"
    if server.engine == "uvicorn":
        import uvicorn

        uvicorn.run(target, factory=True, host=server.host, port=server.port, workers=server.workers,
                    loop="uvloop", http="httptools", access_log=server.access_log, log_level=server.log_level,
                    lifespan="on", proxy_headers=False)  # X-Forwarded-*: server.trusted_proxies only
        return
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels

    options: dict[str, Any] = dict(address=server.host, port=server.port, interface=Interfaces.ASGI, http=HTTPModes.http1,
                                   runtime_threads=server.runtime_threads,
                                   websockets=False, log_access=server.access_log, log_level=LogLevels(server.log_level))
    if server.workers == 1:
        _serve_embedded(target, options)
        return
    from granian import Granian
    from granian.constants import Loops

    Granian(target, factory=True, workers=server.workers, loop=Loops.uvloop, workers_kill_timeout=30, **options).serve()


class _EmbeddedNotice(logging.Filter):
    """granian 2.x logs "Embedded server is experimental!" whenever it runs in-process. Dockyard
    chose that mode by measurement and tests it (tests/e2e/test_serve.py), so the notice would
    only alarm operators; the filter matches that message alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Embedded server is experimental!"


def _serve_embedded(target: str, options: dict[str, Any]) -> None:
    """One worker: run granian inside this process (no supervisor process doubling the memory)."""
    import asyncio
    import signal

    import uvloop
    from granian.server.embed import Server

    from dockyard.app import app_from_environment

    async def main() -> None:
        srv = Server(app_from_environment, factory=True, **options)
        # Server() configures granian's logging; drop its one start-up notice about this mode
        # (see the README's "Choosing the HTTP stack"), keep every other granian warning.
        logging.getLogger("_granian").addFilter(_EmbeddedNotice())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, srv.stop)
        await srv.serve()

    uvloop.run(main())


@main.command("check-config")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def check_config(ctx: click.Context, file: Path | None) -> None:
    """Validate a config file (and the DOCKYARD_* environment) and explain any mistake."""
    if file is not None:
        ctx.obj["config"] = file
    settings = _load(ctx)
    shown = settings.model_dump(mode="json")
    if shown.get("admin_password"):
        shown["admin_password"] = "***"
    if settings.storage.driver == "s3":
        _check_bucket(settings)
    click.echo("configuration is valid:")
    click.echo(json.dumps(shown, indent=2))


def _check_bucket(settings: Settings) -> None:
    """The bucket answers and takes a write; SQLite is refused when another installation (a
    database elsewhere) uses the bucket: one SQLite database cannot be shared by several nodes."""
    from botocore.exceptions import BotoCoreError, ClientError

    from dockyard.app import open_store
    from dockyard.storage.s3 import S3BlobStore

    store = open_store(settings, durable_dirs=False, cache=False)
    assert isinstance(store, S3BlobStore)
    where = f"bucket {store.bucket} at {settings.storage.s3.endpoint or 'AWS S3'}"
    try:
        store.client.head_bucket(Bucket=store.bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            click.echo(f"{where} does not exist yet; `dockyard serve` creates it", err=True)
            return
        raise click.ClickException(f"{where} is not reachable: {exc}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"{where} is not reachable: {exc}") from None
    try:
        store.check_writable()
        owner = store.owner()
    except (ClientError, BotoCoreError, OSError) as exc:
        raise click.ClickException(f"{where} is not writable: {exc}") from None
    click.echo(f"{where}: reachable and writable", err=True)
    if owner is not None and settings.database_url.startswith("sqlite"):
        ours = _installation_of(settings)
        if ours != owner:
            raise click.ClickException(
                f"{where} is shared: it holds the blobs of Dockyard installation {owner}, and this node's database is "
                f"SQLite ({'installation ' + ours if ours else 'a new one'}). A SQLite database serves one node only; "
                "nodes sharing a bucket must share one PostgreSQL database (database.url).")


def _installation_of(settings: Settings) -> str | None:
    """The installation id in an existing SQLite database, without creating or migrating it."""
    from dockyard.meta.cluster import fact_in_sqlite_file
    from dockyard.registry.cluster import INSTALLATION

    return fact_in_sqlite_file(Path(settings.database_url.removeprefix("sqlite:///")), INSTALLATION)


@main.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def migrate(ctx: click.Context, data_dir: Path | None) -> None:
    """Create or upgrade the database schema."""
    _services(_load(ctx, data_dir=data_dir))
    click.echo("database is up to date")


@main.group()
def user() -> None:
    """Manage users."""


def _operator() -> Any:
    """The management Actor of `dockyard user add|passwd`: the operator at the server, who holds the
    data directory and its database and so acts as an administrator. Going through the management
    use-cases (not the stores) applies the API's rules (user names, password lengths) and writes the
    audit record, with `local:<OS user>` as the actor (from "cli")."""
    import getpass

    from dockyard.auth.policy import Principal
    from dockyard.management.base import Actor
    from dockyard.meta.db import utcnow
    from dockyard.meta.users import User

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        who = str(os.getuid())
    operator = User(id=0, username=f"local:{who}", password_hash="", is_admin=True, disabled=False, created_at=utcnow())
    return Actor(Principal(user=operator, account_login=True), remote="cli")


@contextmanager
def _refused() -> Iterator[None]:
    """A use-case's refusal (invalid name or password, a user that exists or does not) as a CLI error."""
    from dockyard.management.errors import ManagementError

    try:
        yield
    except ManagementError as exc:
        raise click.ClickException(exc.message) from None


def _password(prompt: bool, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def user_add(ctx: click.Context, username: str, admin: bool, password_stdin: bool, data_dir: Path | None) -> None:
    """Create a user."""
    services = _services(_load(ctx, data_dir=data_dir))
    password = _password(True, password_stdin)
    with _refused():
        services.management.create_user(_operator(), username, password, is_admin=admin)
    click.echo(f"created user {username}")


@user.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def user_passwd(ctx: click.Context, username: str, password_stdin: bool, data_dir: Path | None) -> None:
    """Set a user's password (their console sessions end)."""
    services = _services(_load(ctx, data_dir=data_dir))
    if services.users.get(username) is None:  # before asking for a password that would go nowhere
        raise click.ClickException(f"user {username!r} not found")
    password = _password(True, password_stdin)
    with _refused():
        services.management.update_user(_operator(), username, password=password)
    click.echo(f"password of {username} changed; their console sessions ended")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def user_list(ctx: click.Context, as_json: bool, data_dir: Path | None) -> None:
    """List users."""
    services = _services(_load(ctx, data_dir=data_dir))
    rows = [{"username": u.username, "admin": u.is_admin, "disabled": u.disabled, "created_at": u.created_at.isoformat()}
            for u in services.users.list()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'USERNAME':<24} {'ADMIN':<6} {'DISABLED':<9} CREATED")
    for r in rows:
        click.echo(f"{r['username']:<24} {str(r['admin']).lower():<6} {str(r['disabled']).lower():<9} {r['created_at']}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; change nothing.")
@click.option("--delete-untagged/--keep-untagged", default=None, help="Also remove manifests nothing keeps [default: gc.delete_untagged].")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--url", metavar="URL", help="Ask the registry at URL to run it (a job; POST /api/v1/gc) instead of "
              "collecting here on the data directory.")
@click.option("--user", "-u", envvar="DOCKYARD_USER", metavar="NAME", help="With --url: the administrator to act as "
              "(password: DOCKYARD_PASSWORD, or asked for).")
@click.option("--wait/--no-wait", default=True, help="With --url: follow the job until it ends [default: wait].")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, delete_untagged: bool | None, data_dir: Path | None, url: str | None,
       user: str | None, wait: bool) -> None:
    """Remove unreferenced blobs (and untagged manifests) and stale uploads, while the registry runs."""
    if url:
        _gc_remote(url, user, dry_run, delete_untagged, wait)
        return
    from tqdm import tqdm

    services = _services(_load(ctx, data_dir=data_dir))
    bars: dict[str, tqdm] = {}

    def progress(stage: str, n: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(desc=f"checking {stage}", unit=" item", file=sys.stderr, leave=True)
        bar.update(n)

    report = services.gc.run(dry_run=dry_run, delete_untagged=delete_untagged, progress=progress)
    for bar in bars.values():
        bar.close()
    click.echo(report.summary())


def _gc_remote(url: str, user: str | None, dry_run: bool, delete_untagged: bool | None, wait: bool) -> None:
    import time

    from dockyard.cli_manage.common import session
    from dockyard.cli_manage.jobs import progress_text

    with session(url, user) as api:
        job_id = api.request_gc(dry_run=dry_run, delete_untagged=delete_untagged)
        click.echo(f"garbage collection: job {job_id}", err=True)
        if not wait:
            return
        shown = ""
        while True:
            job = api.job(job_id)
            line = f"{job.get('state')} {progress_text(job)}".strip()
            if line != shown:
                click.echo(line, err=True)
                shown = line
            if job.get("state") in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
    if job.get("state") != "succeeded":
        raise click.ClickException(f"job {job_id} {job.get('state')}: {job.get('error') or ''}".rstrip(": "))
    click.echo(json.dumps(job.get("result"), sort_keys=True))


@main.command()
@click.option("--concurrency", type=click.IntRange(1, 64), help="Jobs run at once [default: jobs.concurrency].")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--labels", "labels", multiple=True, metavar="KEY=VALUE",
              help="Worker labels (with jobs.labels): builds whose rule asks for them run here, e.g. region=overseas.")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None, data_dir: Path | None, labels: tuple[str, ...]) -> None:
    """Run background jobs (GC, purges, builds…) apart from the API nodes, until SIGTERM or SIGINT:
    then running jobs get jobs.grace_seconds to finish before they are handed back to the queue."""
    import signal
    import threading

    from dockyard.app import make_build_worker, make_worker
    from dockyard.meta.leases import node_holder

    pairs = {}
    for item in ",".join(labels).split(","):
        if item.strip():
            key, sep, value = item.strip().partition("=")
            if not sep or not key or not value:
                raise click.BadParameter(f"{item!r}: KEY=VALUE", param_hint="--labels")
            pairs[key] = value
    settings = _load(ctx, data_dir=data_dir)
    logging.basicConfig(level=settings.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if settings.database_url.startswith("sqlite"):
        # A SQLite registry keeps in-process caches that only its own process's writes update
        # (app.py): GC in another process would leave them stale. Its jobs run inside serve.
        raise click.ClickException("with SQLite, jobs run inside `dockyard serve` (jobs.embedded_worker); "
                                   "`dockyard worker` is for PostgreSQL (database.url)")
    services = _services(settings, long_running=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    holder = node_holder()
    runner = make_worker(services, holder, concurrency or settings.jobs.concurrency)
    builder = make_build_worker(services, holder, pairs)
    runner.start()
    click.echo(f"Dockyard {__version__} worker: {runner.concurrency} job(s) at once, kinds: {', '.join(sorted(runner.kinds))}", err=True)
    if builder is not None:
        builder.start()
        click.echo(f"builds: {builder.concurrency} at once, kinds: {', '.join(sorted(builder.kinds))}", err=True)
    while not stop.wait(1.0):
        pass
    click.echo("stopping: running jobs finish or go back to the queue", err=True)
    if builder is not None:
        builder.stop()
    runner.stop()
    services.activity.flush()
    services.events.dispatch_all()
    services.db.dispose()


from dockyard.cli_manage import register  # noqa: E402  (the commands that drive /api/v1)

register(main)

from dockyard.cli_vulndb import vulndb  # noqa: E402

main.add_command(vulndb)


if __name__ == "__main__":
    main()
