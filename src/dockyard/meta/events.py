"""The event outbox: events written with their change, and their dispatch to subscribers.

- **Written with the change** (`add`, or `add_raw` on the push's raw transaction): the registry
  and management stores insert the events of a change in the change's own transaction. A
  committed change has its events, a rolled-back one has none; a node that dies after the commit
  (even before its client heard back) leaves the event for any node to dispatch.
- **Dispatched exactly once** (`dispatch`, a tick of every node's worker): a batch of undispatched
  events is taken (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes take different batches;
  SQLite serialises writers), each is handed to its subscribers, and the batch is marked
  dispatched, all in one transaction. An inline subscriber (the audit log) writes in that
  transaction; any other gets a job (meta/jobs.py) enqueued in it, carrying the event. Either
  everything of a batch happens or none of it does, and then the next dispatch takes it again.
- Dispatched events are kept for `jobs.retention_seconds` (`purge`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from dockyard.core.events import Event, NewEvent, Origin
from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.jobs import JobStore
from dockyard.meta.raw import RawCursor
from dockyard.meta.tables import events

_INSERT_RAW = ("INSERT INTO events (kind, repository, target, detail, actor, remote, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Who hears of events of `kinds` (None: of every kind): `inline` is called in the
    dispatcher's transaction; `job_kind` gets one job per event, its args {"event": …}."""

    name: str
    kinds: frozenset[str] | None = None
    inline: Callable[[Connection, Event], None] | None = None
    job_kind: str | None = None

    def wants(self, event: Event) -> bool:
        return self.kinds is None or event.kind in self.kinds


def _row(origin: Origin, event: NewEvent) -> tuple[str, str | None, str, str | None, str, str | None]:
    return (event.kind, event.repository[:256] if event.repository else None, event.target[:512],
            json.dumps(event.detail, separators=(",", ":")) if event.detail else None,
            (origin.actor or "anonymous")[:160], (origin.remote or "")[:64] or None)


def event_json(event: Event) -> dict[str, Any]:
    """An event as the args of a subscriber's job (and as JSON anywhere else)."""
    return {"id": event.id, "kind": event.kind, "repository": event.repository, "target": event.target,
            "detail": event.detail, "actor": event.actor, "remote": event.remote,
            "created_at": event.created_at.isoformat()}


def _event(row: Any) -> Event:
    m = row._mapping
    return Event(id=m["id"], kind=m["kind"], repository=m["repository"], target=m["target"],
                 detail=json.loads(m["detail"]) if m["detail"] else {}, actor=m["actor"], remote=m["remote"],
                 created_at=aware(m["created_at"]))


class EventStore:
    def __init__(self, db: Database, jobs: JobStore) -> None:
        self.db = db
        self.jobs = jobs
        self.subscribers: list[Subscriber] = []  # wired by app.py

    # -- writing, inside the change's transaction ---------------------------------------------------
    @staticmethod
    def add(conn: Connection, origin: Origin, new: Sequence[NewEvent]) -> None:
        if new:
            now = utcnow()
            conn.execute(insert(events), [
                dict(zip(("kind", "repository", "target", "detail", "actor", "remote"), _row(origin, e)), created_at=now)
                for e in new])

    @staticmethod
    def add_raw(cur: RawCursor, now: Any, origin: Origin, new: Sequence[NewEvent]) -> None:
        """`add` on the push's raw transaction (meta/raw.py); `now` as `cur.when` binds it."""
        cur.execute_many(_INSERT_RAW, [(*_row(origin, e), now) for e in new])

    # -- dispatching ---------------------------------------------------------------------------------
    def dispatch(self, limit: int = 500) -> int:
        """Hand undispatched events (oldest first, at most `limit`) to the subscribers; returns how
        many were dispatched. Nothing is written when there is nothing to do."""
        with self.db.read() as conn:  # the usual case, every half second on every node: no write lock
            if conn.execute(select(events.c.id).where(events.c.dispatched_at.is_(None)).limit(1)).first() is None:
                return 0
        with self.db.write() as conn:
            rows = conn.execute(select(events).where(events.c.dispatched_at.is_(None)).order_by(events.c.id)
                                .limit(limit).with_for_update(skip_locked=True)).all()
            if not rows:
                return 0  # another node took them
            batch = [_event(row) for row in rows]
            for event in batch:
                for subscriber in self.subscribers:
                    if not subscriber.wants(event):
                        continue
                    if subscriber.inline is not None:
                        subscriber.inline(conn, event)
                    if subscriber.job_kind is not None:
                        self.jobs.enqueue(conn, subscriber.job_kind, {"event": event_json(event)})
            conn.execute(update(events).where(events.c.id.in_([e.id for e in batch])).values(dispatched_at=utcnow()))
        return len(batch)

    def dispatch_all(self, wait_seconds: float = 2.0) -> int:
        """`dispatch` until nothing is left, and wait (`wait_seconds` at most) for the events
        another dispatcher holds (SKIP LOCKED passed them by) to be handed on: what a reader that
        must see every event so far needs (the audit log's query, tests, shutdown). The worker's
        tick passes 0: it never waits on another node."""
        total = 0
        deadline = time.monotonic() + wait_seconds
        while True:
            done = self.dispatch()
            total += done
            if done:
                continue
            if wait_seconds <= 0 or time.monotonic() >= deadline or not self._pending():
                return total
            time.sleep(0.02)

    def _pending(self) -> bool:
        with self.db.read() as conn:
            return conn.execute(select(events.c.id).where(events.c.dispatched_at.is_(None)).limit(1)).first() is not None

    # -- reading and retention -------------------------------------------------------------------------
    def list(self, after_id: int = 0, kind: str | None = None, repository: str | None = None,
             limit: int = 100) -> list[Event]:
        """Events in the order they were written, after `after_id`."""
        q = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if kind:
            q = q.where(events.c.kind == kind)
        if repository:
            q = q.where(events.c.repository == repository)
        with self.db.read() as conn:
            return [_event(row) for row in conn.execute(q)]

    def purge(self, older_than_seconds: float) -> int:
        """Delete events dispatched more than `older_than_seconds` ago."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self.db.write() as conn:
            return int(conn.execute(delete(events).where(events.c.dispatched_at < cutoff)).rowcount)
