"""Jobs with real processes: a worker SIGKILLed in the middle of a job leaves it to another
worker, which finishes it. On SQLite the worker is `dockyard serve`'s embedded one (SQLite jobs
run there); on PostgreSQL two `dockyard worker` processes share the queue.

The job is a garbage collection over a few thousand unreferenced blob rows (deleted five per
transaction: gc.batch_size), long enough to be caught midway; it is killed as soon as it reports
progress.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from dockyard.meta.db import Database, utcnow
from dockyard.meta.jobs import JobStore
from dockyard.meta.migrate import upgrade
from dockyard.meta.tables import blobs
from tests.conftest import ServerProcess, _pg_database, free_port
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.e2e
BLOBS = 4000
LEASE = "5"  # seconds: how soon a dead worker's job goes back to the queue


def garbage(db: Database, count: int) -> None:
    """`count` blob rows nothing references, older than any grace period (their bytes are not in
    the store: deleting a missing blob is not an error)."""
    old = utcnow() - timedelta(days=30)
    rows = [{"digest": f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}", "size": 1, "created_at": old} for _ in range(count)]
    with db.write() as conn:
        conn.execute(insert(blobs), rows)


def blob_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(blobs)).scalar_one())




def job_env(db_url: str) -> dict[str, str]:
    return {"DOCKYARD_DATABASE__URL": db_url, "DOCKYARD_JOBS__LEASE_SECONDS": LEASE, "DOCKYARD_JOBS__POLL_SECONDS": "0.2",
            "DOCKYARD_GC__GRACE_SECONDS": "0", "DOCKYARD_GC__INTERVAL_SECONDS": "0",
            "DOCKYARD_GC__BATCH_SIZE": "5"}  # many small transactions: long enough to be caught midway


def test_a_serve_killed_mid_job_leaves_it_to_the_next_one_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_url = f"sqlite:///{data / 'dockyard.db'}"
    first = ServerProcess(data, free_port(), "jobs-" + uuid.uuid4().hex[:8], env=job_env(db_url)).start()
    db = Database(db_url)
    try:
        garbage(db, BLOBS)
        answer = httpx.post(f"{first.url}/api/v1/gc", json={}, auth=(first.user, first.password), timeout=10)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        jobs = JobStore(db)
        wait_for(lambda: (jobs.get(job_id) or None) and jobs.get(job_id).progress_done, 60, "GC progress")  # type: ignore[union-attr]
        first.stop(signal.SIGKILL)
        left = blob_rows(db)
        assert 0 < left < BLOBS, "killed midway"
        assert jobs.get(job_id).state == "running"  # type: ignore[union-attr]
        second = ServerProcess(data, free_port(), first.password, env=job_env(db_url)).start()
        try:
            done = wait_for(lambda: (j := jobs.get(job_id)) and j.state in ("succeeded", "failed") and j, 120, "the job to end")
        finally:
            second.stop()
        assert done.state == "succeeded" and done.attempts == 2, done
        assert blob_rows(db) == 0
    finally:
        first.stop()
        db.dispose()


def start_worker(tmp_path: Path, name: str, db_url: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / f"{name}.log", "ab")
    env = {**os.environ, **job_env(db_url), "DOCKYARD_DATA_DIR": str(tmp_path / name)}
    return subprocess.Popen([sys.executable, "-m", "dockyard", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_worker_killed_mid_job_leaves_it_to_another_worker_postgres(tmp_path: Path) -> None:
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("PostgreSQL not configured (run through scripts/test)")
    db_url = _pg_database()
    db = Database(db_url)
    upgrade(db)
    jobs = JobStore(db)
    a = start_worker(tmp_path, "a", db_url)
    b: subprocess.Popen[bytes] | None = None
    try:
        garbage(db, BLOBS)
        job_id = jobs.submit("gc", {"dry_run": False}, unique_key="gc")
        wait_for(lambda: (j := jobs.get(job_id)) and j.progress_done, 60, "GC progress on worker a")
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(10)
        assert 0 < blob_rows(db) < BLOBS
        b = start_worker(tmp_path, "b", db_url)
        done = wait_for(lambda: (j := jobs.get(job_id)) and j.state in ("succeeded", "failed") and j, 120, "the job to end")
        assert done.state == "succeeded" and done.attempts == 2, (done, (tmp_path / "b.log").read_text()[-2000:])
        assert blob_rows(db) == 0
        # SIGTERM: a graceful stop
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        db.dispose()


def test_dockyard_worker_refuses_sqlite(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dockyard", "worker", "--data", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")})
    assert result.returncode != 0 and "jobs run inside `dockyard serve`" in result.stderr
