"""Workers: run the queue's jobs (meta/jobs.py) in threads, one job per slot.

`dockyard worker` runs one apart from the API nodes; `dockyard serve` runs one inside each
process by default (`jobs.embedded_worker`). Every worker:

- claims ready jobs of the kinds it has handlers for, `concurrency` at a time, and runs each
  handler in its slot's thread with a `JobContext` (progress, cancellation, stop);
- renews the leases of its running jobs every third of `lease_seconds` from one housekeeping
  thread, which also learns there that a job was asked to cancel;
- puts jobs of dead workers back in the queue (`reclaim`), enqueues due schedules (each run once
  cluster-wide), forgets finished jobs after `retention_seconds`, and runs the node-local tick
  functions (e.g. flushing buffered pull counts), all from the housekeeping thread;
- sleeps while there is nothing to do, and wakes when a job is enqueued: in-process at once, from
  other processes through PostgreSQL's LISTEN/NOTIFY, else after `poll_seconds`;
- stops on `stop()` (SIGTERM for `dockyard worker`): takes no new job, lets running ones finish
  for `grace_seconds`, then asks them to stop and hands back those that do (queued again, the
  attempt not counted); a job whose handler ignores the request is reclaimed after its lease.

Handlers are plain functions `(ctx, args) -> result` (JSON-serialisable or None), idempotent:
a job may run again after a crash. A failure is retried with exponential backoff (with jitter)
up to the job's `max_attempts` (given when it is enqueued), then the job is `failed` with the error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.meta.jobs import NOTIFY_CHANNEL, Job, JobStore

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised by `JobContext.check()` when the job was cancelled: the job ends `cancelled`."""


class WorkerStopping(Exception):
    """Raised by `JobContext.check()` when the worker stops: the job goes back to the queue."""


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Callable[[JobContext, dict[str, Any]], Any]
    backoff_seconds: float = 5.0  # first retry after about this, doubling up to backoff_cap
    backoff_cap: float = 3600.0


@dataclass(frozen=True)
class Schedule:
    """Enqueue `kind` every `every_seconds`, once cluster-wide (meta/jobs.py `due`)."""
    name: str
    kind: str
    every_seconds: float
    args: dict[str, Any] = field(default_factory=dict)
    first_delay: float = 0.0
    unique_key: str | None = None  # default "schedule:NAME": a run is not queued while the last one is unfinished


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry `attempt` + 1: base * 2^(attempt-1), at most cap, with full jitter in
    its upper half (so retries of many jobs that failed together spread out)."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + rand() / 2)


class JobContext:
    """What a running handler sees of its job."""

    def __init__(self, job: Job, worker: Worker) -> None:
        self.job = job
        self.worker = worker
        self.cancel = threading.Event()
        self.lost = threading.Event()  # the lease ran out and another worker may have the job
        self._reported = 0.0

    def check(self) -> None:
        """Call between steps: raises JobCancelled or WorkerStopping when the job should stop."""
        if self.cancel.is_set():
            raise JobCancelled(f"job {self.job.id} was cancelled")
        if self.worker.stopping.is_set() and self.worker.grace_over.is_set():
            raise WorkerStopping(f"worker stopping: job {self.job.id} handed back")
        if self.lost.is_set():
            raise WorkerStopping(f"job {self.job.id}: lease lost")

    def progress(self, done: int, total: int | None = None, force: bool = False) -> None:
        """Report progress (written at most twice a second unless `force`)."""
        now = time.monotonic()
        if force or now - self._reported >= 0.5:
            self._reported = now
            self.worker.store.progress(self.job.id, self.worker.holder, done, total)


class Worker:
    def __init__(self, store: JobStore, kinds: list[Kind], holder: str, concurrency: int = 2,
                 lease_seconds: float = 60.0, poll_seconds: float = 2.0, grace_seconds: float = 30.0,
                 schedules: list[Schedule] | None = None, retention_seconds: float = 7 * 86400,
                 ticks: list[tuple[str, float, Callable[[], Any]]] | None = None, listen_url: str | None = None,
                 chore_seconds: float | None = None) -> None:
        self.store = store
        self.kinds = {k.name: k for k in kinds}
        self.holder = holder
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.schedules = schedules or []
        self.retention_seconds = retention_seconds
        self.ticks = [(name, every, fn, [0.0]) for name, every, fn in (ticks or [])]
        self.listen_url = listen_url
        self.chore_seconds = chore_seconds if chore_seconds is not None else poll_seconds
        self.stopping = threading.Event()
        self.grace_over = threading.Event()
        self.wake = threading.Condition()
        self._pending_wake = False
        self.running: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._last_purge = 0.0
        self._next_due: dict[str, float] = {}
        self._last_reclaim = 0.0
        store.on_enqueue.append(self.notify)

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        targets: list[tuple[str, Callable[[], None]]] = [(f"job-slot-{i}", self._slot) for i in range(self.concurrency)]
        targets.append(("job-housekeeping", self._housekeeping))
        if self.listen_url:
            targets.append(("job-listen", self._listen))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            if target != self._listen:  # it ends within a second by itself; stop() does not wait for it
                self._threads.append(thread)

    def stop(self) -> None:
        """Take no new job; wait `grace_seconds` for running ones, then ask them to stop."""
        self.stopping.set()
        self.notify()
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline and self.running:
            time.sleep(0.05)
        self.grace_over.set()
        for thread in self._threads:
            thread.join(timeout=max(1.0, self.lease_seconds / 3))
        if self.notify in self.store.on_enqueue:
            self.store.on_enqueue.remove(self.notify)

    def notify(self) -> None:
        with self.wake:
            self._pending_wake = True
            self.wake.notify_all()

    def _sleep(self, seconds: float) -> None:
        with self.wake:  # `stop` sets `stopping` before it notifies: checked under the lock, no wake-up is lost
            if not self._pending_wake and not self.stopping.is_set():
                self.wake.wait(seconds)
            self._pending_wake = False

    # -- slots ------------------------------------------------------------------------------------
    def _slot(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self.store.claim(self.holder, self.kinds, self.lease_seconds)
            except Exception:
                log.exception("jobs: could not claim a job")
                job = None
                time.sleep(self.poll_seconds)
            if job is None:
                self._sleep(self.poll_seconds)
                continue
            self.run(job)

    def run(self, job: Job) -> None:
        kind = self.kinds[job.kind]
        ctx = JobContext(job, self)
        with self._lock:
            self.running[job.id] = ctx
        try:
            try:
                if job.cancel_requested:
                    raise JobCancelled(f"job {job.id} was cancelled")
                result = kind.handler(ctx, job.args)
            except JobCancelled:
                self.store.cancelled(job.id, self.holder)
                log.info("job %s (%s) cancelled", job.id, job.kind)
            except WorkerStopping:
                self.store.hand_back(job.id, self.holder)
                log.info("job %s (%s) handed back", job.id, job.kind)
            except Exception as exc:
                retry = backoff(job.attempts, kind.backoff_seconds, kind.backoff_cap) if job.attempts < job.max_attempts else None
                state = self.store.fail(job.id, self.holder, f"{type(exc).__name__}: {exc}", retry)
                log.warning("job %s (%s) attempt %d failed (%s): %s", job.id, job.kind, job.attempts, state, exc,
                            exc_info=state == "failed")
            else:
                if not self.store.succeed(job.id, self.holder, result):
                    log.warning("job %s (%s) finished after its lease ran out; another worker may run it again", job.id, job.kind)
        except Exception:
            log.exception("jobs: could not record the end of job %s", job.id)
        finally:
            with self._lock:
                self.running.pop(job.id, None)

    # -- housekeeping -----------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        renew_every = self.lease_seconds / 3
        last_renew = last_chores = 0.0
        while not (self.stopping.is_set() and not self.running):
            now = time.monotonic()
            try:
                if now - last_renew >= renew_every:
                    last_renew = now
                    self._renew()
                if not self.stopping.is_set() and now - last_chores >= self.chore_seconds:
                    last_chores = now
                    self._chores()
            except Exception:
                log.exception("jobs: housekeeping failed")
            self._ticks()
            self.stopping.wait(min([self.chore_seconds, renew_every, *(t[1] for t in self.ticks)]))

    def _renew(self) -> None:
        with self._lock:
            running = dict(self.running)
        if not running:
            return
        held, cancel = self.store.renew(self.holder, list(running), self.lease_seconds)
        for job_id, ctx in running.items():
            if job_id in cancel:
                ctx.cancel.set()
            if job_id not in held and job_id in self.running:
                ctx.lost.set()

    def _chores(self) -> None:
        now = time.monotonic()
        if now - self._last_reclaim >= self.lease_seconds / 3:  # a lease runs out in lease_seconds at best
            self._last_reclaim = now
            if self.store.reclaim():
                self.notify()
        for schedule in self.schedules:  # enqueued even when other workers run the kind
            if time.monotonic() < self._next_due.get(schedule.name, 0.0):
                continue  # not due yet, as the database said last time: no write until then
            _, wait = self.store.due(schedule.name, schedule.every_seconds, schedule.kind, schedule.args,
                                     schedule.first_delay, schedule.unique_key)
            self._next_due[schedule.name] = time.monotonic() + wait
        now = time.monotonic()
        if now - self._last_purge >= 3600:
            self._last_purge = now
            self.store.purge_finished(self.retention_seconds)

    def _ticks(self) -> None:
        now = time.monotonic()
        for name, every, fn, last in self.ticks:
            if now - last[0] >= every:
                last[0] = now
                try:
                    fn()
                except Exception:
                    log.exception("%s failed", name)

    # -- PostgreSQL wake-ups ----------------------------------------------------------------------
    def _listen(self) -> None:
        import psycopg

        url = self.listen_url or ""
        while not self.stopping.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.notify()
            except Exception as exc:
                log.warning("jobs: LISTEN connection failed (%s); polling meanwhile", exc)
                self.stopping.wait(5.0)
