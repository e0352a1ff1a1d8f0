"""The durable job queue (meta/jobs.py) and its workers (jobs/worker.py), on SQLite and PostgreSQL.

"Nodes" are separate Database objects (their own connection pools) on one database, as separate
processes would have; workers run in this process. A worker killed mid-job is in
tests/e2e/test_jobs_e2e.py (real processes, SIGKILL).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from dockyard.api.management.schemas import JobOut
from dockyard.jobs.worker import JobContext, Kind, Schedule, Worker
from dockyard.meta.db import Database
from dockyard.meta.jobs import JobStore
from dockyard.meta.tables import jobs
from tests.integration.helpers import run_together, wait_for






def worker(store: JobStore, kinds: list[Kind], name: str = "w", **options: Any) -> Worker:
    options = {"poll_seconds": 0.05, "lease_seconds": 3.0, "grace_seconds": 2.0, "chore_seconds": 0.1} | options
    w = Worker(store, kinds, holder=name, **options)
    w.start()
    return w


def state(store: JobStore, job_id: int) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    ran: list[dict[str, Any]] = []
    with pytest.raises(RuntimeError):
        with nodes[0].write() as conn:
            store.enqueue(conn, "note", {"n": 1})
            raise RuntimeError("the change failed")
    kept = store.submit("note", {"n": 2})
    w = worker(store, [Kind("note", lambda ctx, args: ran.append(args))])
    try:
        wait_for(lambda: state(store, kept) == "succeeded", what="the committed job")
        time.sleep(0.2)
    finally:
        w.stop()
    assert ran == [{"n": 2}] and [j.id for j in store.list()] == [kept]


def test_each_job_is_claimed_by_exactly_one_of_many_workers(nodes: list[Database]) -> None:
    stores = [JobStore(db) for db in nodes]
    ids = [stores[0].submit("count", {"i": i}) for i in range(40)]
    claimed: list[int] = []

    def drain(store: JobStore, holder: str) -> list[int]:
        got = []
        while (job := store.claim(holder, ["count"], 30)) is not None:
            got.append(job.id)
            store.succeed(job.id, holder, {"by": holder})
        return got

    for got in run_together([lambda s=s, i=i: drain(s, f"n{i}") for i, s in enumerate(stores)]):
        claimed.extend(got)
    assert sorted(claimed) == ids
    assert all(j.state == "succeeded" and j.attempts == 1 for j in stores[0].list(limit=100))


def test_unique_keys_allow_one_unfinished_job(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    first = store.submit("gc", unique_key="gc")
    assert store.submit("gc", unique_key="gc") == first
    job = store.claim("w", ["gc"], 30)
    assert job is not None and job.id == first
    assert store.submit("gc", unique_key="gc") == first, "running counts as unfinished"
    store.succeed(first, "w", {"blobs": 3})
    second = store.submit("gc", unique_key="gc")
    assert second != first
    done = store.get(first)
    assert done is not None and done.result == {"blobs": 3} and done.unique_key is None


def test_a_failing_job_is_retried_with_backoff_then_failed_with_its_error(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    seen: list[float] = []

    def broken(ctx: JobContext, args: dict[str, Any]) -> None:
        seen.append(time.monotonic())
        raise ValueError(f"attempt {ctx.job.attempts} failed")

    job_id = store.submit("broken", max_attempts=3)
    w = worker(store, [Kind("broken", broken, backoff_seconds=0.3)])
    try:
        wait_for(lambda: state(store, job_id) == "failed", what="the job to fail")
    finally:
        w.stop()
    job = store.get(job_id)
    assert job is not None and job.attempts == 3 and job.error == "ValueError: attempt 3 failed"
    assert job.finished_at is not None and len(seen) == 3
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert 0.15 <= gaps[0] and 0.3 <= gaps[1], gaps  # 0.3 s, then 0.6 s, each jittered down by half at most


def test_cancel_a_queued_job_and_a_running_one(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    started = threading.Event()

    def long(ctx: JobContext, args: dict[str, Any]) -> None:
        started.set()
        for step in range(2000):
            ctx.check()
            ctx.progress(step, 2000)
            time.sleep(0.01)

    later = store.submit("long", delay_seconds=3600)
    cancelled = store.cancel(later)
    assert cancelled is not None and cancelled.state == "cancelled"
    running = store.submit("long")
    w = worker(store, [Kind("long", long)], lease_seconds=0.6)  # renewals (which carry the cancel) every 0.2 s
    try:
        assert started.wait(10)
        wait_for(lambda: (store.get(running) or cancelled).progress_done, what="progress")
        asked = store.cancel(running)
        assert asked is not None and asked.state == "running" and asked.cancel_requested
        wait_for(lambda: state(store, running) == "cancelled", what="the running job to stop")
    finally:
        w.stop()
    job = store.get(running)
    assert job is not None and 0 < (job.progress_done or 0) < 2000 and job.progress_total == 2000


def test_a_dead_workers_job_returns_to_the_queue_and_another_finishes_it(nodes: list[Database]) -> None:
    a, b = JobStore(nodes[0]), JobStore(nodes[1])
    job_id = a.submit("work", {"x": 1})
    job = a.claim("dead-worker", ["work"], lease_seconds=0.3)  # then it "dies": no renewal
    assert job is not None and job.attempts == 1
    w = worker(b, [Kind("work", lambda ctx, args: {"done": args["x"]})], name="alive")
    try:
        wait_for(lambda: state(b, job_id) == "succeeded", what="the reclaimed job")
    finally:
        w.stop()
    done = b.get(job_id)
    assert done is not None and done.attempts == 2 and done.result == {"done": 1}


def test_the_last_attempt_of_a_dead_worker_ends_failed(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    job_id = store.submit("work", max_attempts=1)
    assert store.claim("dead-worker", ["work"], lease_seconds=0.1) is not None
    time.sleep(0.3)
    assert store.reclaim() == 1
    job = store.get(job_id)
    assert job is not None and job.state == "failed" and "stopped answering" in (job.error or "")


def test_a_schedule_runs_once_per_interval_with_several_nodes(nodes: list[Database]) -> None:
    stores = [JobStore(db) for db in nodes]
    enqueued = run_together([lambda s=s: s.due("gc-every-hour", 3600, "gc")[0] for s in stores])
    assert len([e for e in enqueued if e is not None]) == 1, enqueued
    for s in stores:
        job_id, wait = s.due("gc-every-hour", 3600, "gc")
        assert job_id is None and 3590 < wait <= 3600
    with nodes[0].write() as conn:  # an hour later
        conn.execute(update(jobs).values(state="succeeded", unique_key=None))
        from dockyard.meta.tables import job_schedules

        conn.execute(update(job_schedules).values(next_run_at=job_schedules.c.next_run_at - timedelta(hours=1)))
    again = run_together([lambda s=s: s.due("gc-every-hour", 3600, "gc")[0] for s in stores])
    assert len([e for e in again if e is not None]) == 1, again


def test_two_workers_on_two_nodes_run_a_scheduled_job_once_per_run(nodes: list[Database]) -> None:
    runs: list[float] = []
    lock = threading.Lock()

    def tick(ctx: JobContext, args: dict[str, Any]) -> None:
        with lock:
            runs.append(time.monotonic())

    schedule = Schedule("tick", "tick", every_seconds=0.5)
    workers = [worker(JobStore(db), [Kind("tick", tick)], name=f"n{i}", schedules=[schedule], concurrency=2)
               for i, db in enumerate(nodes[:2])]
    try:
        time.sleep(2.6)
    finally:
        for w in workers:
            w.stop()
    # about five runs in 2.6 s, never two for one slot (they would be < 0.5 s apart)
    assert 3 <= len(runs) <= 6, runs
    assert all(b - a > 0.4 for a, b in zip(runs, runs[1:])), runs


def test_a_stopping_worker_hands_back_a_job_that_outlives_the_grace(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    started = threading.Event()

    def slow(ctx: JobContext, args: dict[str, Any]) -> None:
        started.set()
        while True:
            ctx.check()
            time.sleep(0.01)

    job_id = store.submit("slow")
    w = worker(store, [Kind("slow", slow)], grace_seconds=0.3)
    assert started.wait(10)
    w.stop()
    job = store.get(job_id)
    assert job is not None and job.state == "queued" and job.attempts == 0


def test_finished_jobs_are_forgotten_after_the_retention(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    old, recent, queued = store.submit("a"), store.submit("a"), store.submit("a", delay_seconds=3600)
    for job_id in (old, recent):
        assert store.claim("w", ["a"], 30) is not None
        store.succeed(job_id, "w")
    with nodes[0].write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == old).values(finished_at=jobs.c.finished_at - timedelta(days=8)))
    assert store.purge_finished(7 * 86400) == 1
    assert sorted(j.id for j in store.list()) == [recent, queued]
    assert store.counts() == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 0}


def test_listing_filters_and_pages_newest_first(nodes: list[Database]) -> None:
    store = JobStore(nodes[0])
    ids = [store.submit("gc" if i % 2 else "purge") for i in range(6)]
    assert [j.id for j in store.list()] == ids[::-1]
    assert [j.id for j in store.list(kind="gc")] == [ids[5], ids[3], ids[1]]
    assert [j.id for j in store.list(state="queued", limit=2)] == [ids[5], ids[4]]
    assert [j.id for j in store.list(limit=2, before=ids[4])] == [ids[3], ids[2]]
    shape = JobOut.of(store.list(limit=1)[0]).model_dump(mode="json")  # what GET /api/v1/jobs answers
    assert set(shape) >= {"id", "kind", "state", "progress", "attempts", "error", "created_at", "finished_at"}
    assert shape["created_at"].endswith("Z") and shape["progress"] is None
