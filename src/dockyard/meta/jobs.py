"""The durable job queue, in the metadata database (SQLite or PostgreSQL).

A job is a row (`jobs`): its kind and JSON arguments, its state, when it may run, how many times
it was tried, and while it runs, which worker holds it until when (a lease the worker renews).

- **Enqueued with the change that causes it**: `enqueue(conn, …)` inserts into the caller's
  transaction, so a rollback takes the job with it. On PostgreSQL it also sends `NOTIFY
  dockyard_jobs`, delivered at commit, which wakes idle workers at once.
- **Claimed by one worker**: `claim` moves the oldest ready job of the worker's kinds to
  `running` in one UPDATE whose subquery locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL (many
  workers take different jobs without waiting on each other); SQLite serialises writers.
- **At least once**: a worker that dies stops renewing its lease (`holder` names the worker of the
  last attempt, and stays when the job ends); `reclaim` (any worker, any node)
  puts the job back in the queue once the lease has run out. Handlers are idempotent.
- **Unique keys**: at most one unfinished job per `unique_key` (a second enqueue returns the
  first job's id); the key is cleared when the job finishes, so the next one may be enqueued.
- **Retries** with a backoff chosen by the worker (`retry_at`), up to `max_attempts`; then
  `failed` with the last error. **Cancel**: a queued job is cancelled at once, a running one is
  asked to stop (its worker sees `cancel_requested` when it renews the lease).
- **Schedules**: `due` moves a schedule's `next_run_at` on with a conditional UPDATE and
  enqueues the run in the same transaction, so with any number of nodes each run happens once.

Times come from the database server on PostgreSQL (nodes' clocks may differ), from this process
on SQLite (one node).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, select, text, update

from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import job_schedules, jobs

NOTIFY_CHANNEL = "dockyard_jobs"
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
MAX_ERROR = 4000  # characters of an error kept


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    args: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    progress_done: int | None
    progress_total: int | None
    result: Any
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_at: datetime
    unique_key: str | None
    cancel_requested: bool
    worker: str | None  # the worker running (or that ran) its last attempt: HOST:PID:RANDOM




def _job(row: Any) -> Job:
    m = row._mapping
    return Job(
        id=m["id"], kind=m["kind"], args=json.loads(m["args"]), state=m["state"], attempts=m["attempts"],
        max_attempts=m["max_attempts"], progress_done=m["progress_done"], progress_total=m["progress_total"],
        result=json.loads(m["result"]) if m["result"] is not None else None, error=m["error"],
        created_at=aware(m["created_at"]), started_at=aware(m["started_at"]) if m["started_at"] else None,
        finished_at=aware(m["finished_at"]) if m["finished_at"] else None, run_at=aware(m["run_at"]),
        unique_key=m["unique_key"], cancel_requested=bool(m["cancel_requested"]), worker=m["holder"],
    )


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Called after a job is enqueued in this process (it may not be committed yet): wakes
        # this process's idle workers, which then look; a rolled-back job is simply not found.
        # Every worker of this process adds its wake-up (a node runs a worker for builds besides
        # the one for the other jobs).
        self.on_enqueue: list[Callable[[], None]] = []

    def now(self, conn: Connection) -> datetime:
        if self.db.is_sqlite:
            return utcnow()
        value: datetime = conn.execute(select(func.now())).scalar_one()
        return value

    # -- enqueueing -------------------------------------------------------------------------------
    def enqueue(self, conn: Connection, kind: str, args: dict[str, Any] | None = None, *, unique_key: str | None = None,
                delay_seconds: float = 0, priority: int = 0, max_attempts: int = 5) -> int:
        """Add a job inside the caller's transaction; returns its id (with `unique_key`: the id of
        the unfinished job with that key when there is one)."""
        now = self.now(conn)
        values = {
            "kind": kind, "args": json.dumps(args or {}, separators=(",", ":")), "state": "queued",
            "unique_key": unique_key, "priority": priority, "run_at": now + timedelta(seconds=delay_seconds),
            "attempts": 0, "max_attempts": max_attempts, "cancel_requested": False, "created_at": now,
        }
        if unique_key is None:
            job_id = int(conn.execute(insert(jobs).values(values).returning(jobs.c.id)).scalar_one())
        else:
            inserted = insert_ignore(conn, jobs, values)
            job_id = int(conn.execute(select(jobs.c.id).where(jobs.c.unique_key == unique_key)).scalar_one())
            if not inserted:  # the unfinished job with that key: nothing new to wake anyone for
                return job_id
        if not self.db.is_sqlite:
            conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        for wake in self.on_enqueue:
            wake()
        return job_id

    def hasten(self, conn: Connection, unique_key: str) -> bool:
        """Make the queued job with this key (waiting for its retry, say) ready now, inside the
        caller's transaction; False when there is none."""
        moved = conn.execute(update(jobs).where(jobs.c.unique_key == unique_key, jobs.c.state == "queued")
                             .values(run_at=self.now(conn))).rowcount
        if moved:
            for wake in self.on_enqueue:
                wake()
        return bool(moved)

    def submit(self, kind: str, args: dict[str, Any] | None = None, **options: Any) -> int:
        """Enqueue in a transaction of its own."""
        with self.db.write() as conn:
            return self.enqueue(conn, kind, args, **options)

    def due(self, name: str, every_seconds: float, kind: str, args: dict[str, Any] | None = None,
            first_delay: float = 0, unique_key: str | None = None, max_attempts: int = 3) -> tuple[int | None, float]:
        """Enqueue schedule `name`'s run if it is due, moving the schedule on by `every_seconds`.
        Returns (the job's id, or None when it was not due or another node enqueued this run;
        seconds until the next run is due). A schedule seen for the first time is due after
        `first_delay`."""
        with self.db.write() as conn:
            now = self.now(conn)
            insert_ignore(conn, job_schedules, {"name": name, "next_run_at": now + timedelta(seconds=first_delay)})
            moved = conn.execute(update(job_schedules).where(job_schedules.c.name == name, job_schedules.c.next_run_at <= now)
                                 .values(next_run_at=now + timedelta(seconds=every_seconds))).rowcount
            if not moved:
                next_run = aware(conn.execute(select(job_schedules.c.next_run_at).where(job_schedules.c.name == name)).scalar_one())
                return None, max(0.0, (next_run - aware(now)).total_seconds())
            job_id = self.enqueue(conn, kind, args, unique_key=unique_key or f"schedule:{name}", max_attempts=max_attempts)
            return job_id, every_seconds

    # -- running ----------------------------------------------------------------------------------
    def claim(self, holder: str, kinds: Iterable[str], lease_seconds: float) -> Job | None:
        """Take the next ready job of `kinds` for `holder`, or None."""
        kinds = list(kinds)
        with self.db.write() as conn:
            now = self.now(conn)
            ready = (select(jobs.c.id)
                     .where(jobs.c.state == "queued", jobs.c.run_at <= now, jobs.c.kind.in_(kinds))
                     .order_by(jobs.c.priority.desc(), jobs.c.run_at, jobs.c.id).limit(1)
                     .with_for_update(skip_locked=True).scalar_subquery())
            row = conn.execute(update(jobs).where(jobs.c.id == ready, jobs.c.state == "queued").values(
                state="running", holder=holder, lease_until=now + timedelta(seconds=lease_seconds),
                attempts=jobs.c.attempts + 1, started_at=now,
            ).returning(*jobs.c)).first()
        return _job(row) if row is not None else None

    def renew(self, holder: str, ids: list[int], lease_seconds: float) -> tuple[set[int], set[int]]:
        """Extend `holder`'s leases of `ids`; returns (ids still held, ids asked to cancel)."""
        if not ids:
            return set(), set()
        with self.db.write() as conn:
            now = self.now(conn)
            rows = conn.execute(update(jobs).where(jobs.c.id.in_(ids), jobs.c.holder == holder, jobs.c.state == "running")
                                .values(lease_until=now + timedelta(seconds=lease_seconds))
                                .returning(jobs.c.id, jobs.c.cancel_requested)).all()
        return {r[0] for r in rows}, {r[0] for r in rows if r[1]}

    def progress(self, job_id: int, holder: str, done: int, total: int | None) -> None:
        with self.db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.holder == holder, jobs.c.state == "running")
                         .values(progress_done=done, progress_total=total))

    def _finish(self, job_id: int, holder: str, state: str, **values: Any) -> bool:
        with self.db.write() as conn:
            now = self.now(conn)
            return bool(conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.holder == holder, jobs.c.state == "running")
                                     .values(state=state, lease_until=None, finished_at=now, unique_key=None,
                                             **values)).rowcount)

    def succeed(self, job_id: int, holder: str, result: Any = None) -> bool:
        """Record the result; False when `holder` no longer held the job (its lease ran out)."""
        return self._finish(job_id, holder, "succeeded", error=None,
                            result=json.dumps(result, separators=(",", ":")) if result is not None else None)

    def cancelled(self, job_id: int, holder: str) -> bool:
        return self._finish(job_id, holder, "cancelled")

    def fail(self, job_id: int, holder: str, error: str, retry_in: float | None) -> str | None:
        """The attempt failed: queue the job again after `retry_in` seconds while it has attempts
        left, else mark it failed. Returns the new state (None when `holder` no longer held it)."""
        error = error[:MAX_ERROR]
        with self.db.write() as conn:
            now = self.now(conn)
            held = and_(jobs.c.id == job_id, jobs.c.holder == holder, jobs.c.state == "running")
            if retry_in is not None and conn.execute(update(jobs).where(
                    held, jobs.c.attempts < jobs.c.max_attempts, jobs.c.cancel_requested.is_(False)).values(
                    state="queued", lease_until=None, error=error,
                    run_at=now + timedelta(seconds=retry_in))).rowcount:
                return "queued"
            done = conn.execute(update(jobs).where(held).values(
                state="failed", lease_until=None, error=error, finished_at=now, unique_key=None)).rowcount
            return "failed" if done else None

    def hand_back(self, job_id: int, holder: str) -> None:
        """A worker stopping before the job finished: queue it again, this attempt not counted."""
        with self.db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.holder == holder, jobs.c.state == "running")
                         .values(state="queued", lease_until=None, attempts=jobs.c.attempts - 1))

    def reclaim(self) -> int:
        """Jobs whose worker stopped renewing (it died): queued again, or failed when that was
        their last attempt. Returns how many."""
        with self.db.write() as conn:
            now = self.now(conn)
            lost = and_(jobs.c.state == "running", jobs.c.lease_until < now)
            again = conn.execute(update(jobs).where(lost, jobs.c.attempts < jobs.c.max_attempts, jobs.c.cancel_requested.is_(False))
                                 .values(state="queued", lease_until=None, run_at=now,
                                         error="the worker running it stopped answering")).rowcount
            over = conn.execute(update(jobs).where(lost).values(
                # asked to cancel: cancelled; any other: failed
                state=case((jobs.c.cancel_requested.is_(True), "cancelled"), else_="failed"), lease_until=None, finished_at=now, unique_key=None,
                error="the worker running it stopped answering")).rowcount
        return int(again + over)

    # -- asking and cancelling --------------------------------------------------------------------
    def get(self, job_id: int) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def list(self, kind: str | None = None, state: str | None = None, limit: int = 100, before: int | None = None) -> list[Job]:
        """Newest first; `before`: only jobs with a smaller id (the next page)."""
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        if state is not None:
            query = query.where(jobs.c.state == state)
        if before is not None:
            query = query.where(jobs.c.id < before)
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(query)]

    def cancel(self, job_id: int, record: Callable[[Connection, Job], None] | None = None) -> Job | None:
        """Cancel a queued job now, ask a running one to stop; a finished job stays as it is.
        `record(conn, job)` runs in the same transaction when the job exists (the audit record)."""
        with self.db.write() as conn:
            now = self.now(conn)
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued").values(
                state="cancelled", finished_at=now, unique_key=None))
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running").values(cancel_requested=True))
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            job = _job(row) if row is not None else None
            if job is not None and record is not None:
                record(conn, job)
        return job

    def purge_finished(self, older_than_seconds: float) -> int:
        """Forget finished jobs older than that (`jobs.retention_seconds`)."""
        with self.db.write() as conn:
            cutoff = self.now(conn) - timedelta(seconds=older_than_seconds)
            return int(conn.execute(delete(jobs).where(jobs.c.state.in_(FINISHED), jobs.c.finished_at < cutoff)).rowcount)

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        return {state: 0 for state in STATES} | {r[0]: int(r[1]) for r in rows}


