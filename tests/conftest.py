"""Shared fixtures.

- `settings` / `app_client`: the whole ASGI app in-process (Starlette TestClient), on SQLite and,
  when DOCKYARD_TEST_POSTGRES is set (scripts/test sets it), on PostgreSQL too: every test that
  uses `db_url` runs once per database.
- `server`: a real `dockyard serve` process on a free loopback port, for real clients.
- `ceph_rgw` / `s3_bucket`: a real S3 server (Ceph RADOS Gateway) and a fresh bucket on it, from
  tests/s3_support.py; tests that use them are marked `s3`.

Tests marked `shared_harness` run the workspace's ../shared/e2e/run.sh as an extra; a clone
without it (as anyone who clones Dockyard has it) deselects them rather than skipping them, so a
missing harness shows as neither a failure nor a skip.
"""

from __future__ import annotations

import atexit
import base64
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from dockyard.app import build_services, create_app
from dockyard.auth.passwords import hash_password
from dockyard.config import Settings, load_settings
from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from tests.s3_support import ceph_rgw, s3_bucket  # noqa: F401  (fixtures, found by name)

ADMIN = ("admin", "admin-password")


@functools.lru_cache(maxsize=None)
def hashed(password: str) -> str:
    """hash_password, once per password per test session: argon2 costs ~60 ms a call, and the
    fixtures create the same accounts for every test."""
    return hash_password(password)
ROOT = Path(__file__).resolve().parents[1]
SHARED_E2E = Path(os.environ.get("DOCKYARD_SHARED_DIR") or ROOT.parent / "shared") / "e2e"
PG_URL = os.environ.get("DOCKYARD_TEST_POSTGRES")  # e.g. postgresql+psycopg://postgres@127.0.0.1:54329


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if (SHARED_E2E / "run.sh").exists():
        return
    extra = [item for item in items if item.get_closest_marker("shared_harness")]
    if extra:
        config.hook.pytest_deselected(items=extra)
        items[:] = [item for item in items if not item.get_closest_marker("shared_harness")]


_templates: dict[str, str] = {}


def _pg_template() -> str:
    """A database migrated once per test session, copied for each test (CREATE DATABASE ...
    TEMPLATE): much faster than running the migrations again for every test."""
    if "postgres" not in _templates:
        name = _create_pg_database()
        db = Database(f"{PG_URL}/{name}")
        upgrade(db)
        db.dispose()
        _templates["postgres"] = name
    return _templates["postgres"]


def _create_pg_database(template: str | None = None) -> str:
    assert PG_URL
    name = f"t_{uuid.uuid4().hex[:12]}"
    import psycopg

    raw = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""))
    return name


def _pg_database(migrated: bool = True) -> str:
    """A new PostgreSQL database of its own: migrated to head unless `migrated` is false."""
    return f"{PG_URL}/{_create_pg_database(_pg_template() if migrated else None)}"


def _sqlite_database(path: Path, migrated: bool = True) -> str:
    """A SQLite database at `path`: a copy of one migrated once per session unless `migrated` is false."""
    if migrated:
        if "sqlite" not in _templates:
            template = Path(tempfile.mkdtemp(prefix="dockyard-template-")) / "dockyard.db"
            atexit.register(shutil.rmtree, template.parent, True)
            db = Database(f"sqlite:///{template}")
            upgrade(db)
            db.dispose()
            _templates["sqlite"] = str(template)
        shutil.copyfile(_templates["sqlite"], path)
    return f"sqlite:///{path}"


def _database(backend: str, tmp_path: Path, migrated: bool) -> str:
    """A database of its own for a test on `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        return _sqlite_database(tmp_path / "dockyard.db", migrated)
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("DOCKYARD_TEST_POSTGRES is not set: run the tests through scripts/test")
        pytest.skip("PostgreSQL not configured (run through scripts/test)")
    return _pg_database(migrated)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database per test, already migrated (as `dockyard serve` leaves it)."""
    return _database(request.param, tmp_path, migrated=True)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database per test with no table at all."""
    return _database(request.param, tmp_path, migrated=False)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # Scanning is off here: the embedded worker's scans of what the tests push would add SBOM
    # referrers and briefly lock blob rows (the scans table's foreign key) at moments it chooses,
    # which GC's exact sets cannot allow for. tests/integration/test_scans.py and the console's
    # security tests turn it on. Builds are off too (no build worker): a queued build stays queued.
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url},
                         gc={"interval_seconds": 0}, uploads={"purge_interval_seconds": 0}, scan={"enabled": False},
                         builds={"enabled": False})


@pytest.fixture
def services(settings: Settings) -> Iterator[object]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    svc = build_services(settings)  # its database is migrated already (db_url)
    svc.users.create(ADMIN[0], hashed(ADMIN[1]), is_admin=True)
    yield svc
    svc.db.dispose()
    if svc.builds.root.exists() and not svc.builds.root.is_relative_to(settings.data_dir.resolve()):
        shutil.rmtree(svc.builds.root, ignore_errors=True)  # in the build user's home


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def app_client(settings: Settings, services: object) -> Iterator[TestClient]:
    """The registry in-process, authenticated as admin with Basic credentials."""
    app = create_app(settings, services)  # type: ignore[arg-type]
    with TestClient(app, base_url="http://registry.test", headers=basic(*ADMIN)) as client:
        yield client


@pytest.fixture
def anon_client(settings: Settings, services: object) -> Iterator[TestClient]:
    app = create_app(settings, services)  # type: ignore[arg-type]
    with TestClient(app, base_url="http://registry.test") as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(fetch: Any, done: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Call `fetch()` until `done(value)` (bounded by `timeout`); asserts it got there, returns the value."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fetch()
    assert done(value), value
    return value


class ServerProcess:
    def __init__(self, data: Path, port: int, password: str, env: dict[str, str] | None = None,
                 db_url: str | None = None) -> None:
        self.data = data
        self.port = port
        self.user = "admin"
        self.password = password
        self.url = f"http://127.0.0.1:{port}"
        self.address = f"127.0.0.1:{port}"
        self.log = data.parent / f"server-{port}.log"
        self.env = {**os.environ, "DOCKYARD_ADMIN_PASSWORD": password, **(env or {})}
        if db_url:
            self.env["DOCKYARD_DATABASE__URL"] = db_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServerProcess":
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        # Own session, so the server and its worker processes can be killed as a group.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve", "--listen", self.address, "--data", str(self.data)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyard serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code == 401:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"dockyard serve did not start: {self.log.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # make sure no worker of the group outlives the test
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        remove_build_dirs(self.data)


def remove_build_dirs(data: Path) -> None:
    """Builds of a data directory work in the build user's home when there is one (outside the
    test's tmp_path): remove what they left there."""
    from dockyard.builder.users import resolve
    from dockyard.config import Settings
    from dockyard.registry.builds import build_root

    user = resolve("auto")
    if user is not None:
        shutil.rmtree(build_root(Settings(data_dir=data), user), ignore_errors=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12]).start()
    yield proc
    proc.stop()
