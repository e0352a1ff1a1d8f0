"""Leases: periodic work that runs once cluster-wide (GC, the upload purge), not once per node.

Every node runs the same periodic tasks; before a run each asks for the task's lease. A lease row
(table `leases`, one per task name) says who holds it until when, and when the last run started.
`try_acquire` is one conditional UPDATE: it succeeds only when nobody holds an unexpired lease and
the last run started at least `every_seconds` ago, so of N nodes whose timers fire in the same
interval exactly one runs the task. Under PostgreSQL's READ COMMITTED a second UPDATE of the row
waits for the first to commit and then re-evaluates its WHERE against the row as the first left
it (now held, last run now): it changes nothing. SQLite serialises writers.

A lease expires: a node that dies while holding it blocks the task for `ttl_seconds` at most. A
long run renews its lease (`Lease.renew`, between batches) and releases it at the end; a released
lease keeps `last_run_at`, so the next run is due `every_seconds` after this one started.

Times come from the database server on PostgreSQL (nodes' clocks may differ; the database has
one), from this process on SQLite (one node).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Connection, func, or_, select, update

from dockyard.meta.db import Database, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import leases

log = logging.getLogger(__name__)
T = TypeVar("T")


def node_holder() -> str:
    """A holder name unique to this process (host, pid and a random part), ≤ 64 characters."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _now(self, conn: Connection) -> datetime:
        if self.db.is_sqlite:
            return utcnow()
        value: datetime = conn.execute(select(func.now())).scalar_one()  # the server's clock
        return value

    def try_acquire(self, name: str, holder: str, ttl_seconds: int, every_seconds: int, takeover: bool = False) -> bool:
        """Take the lease `name` for `ttl_seconds` if nobody holds it (or, with `takeover`,
        `holder` itself does) and its last run started at least `every_seconds` ago; True when
        taken (the caller runs the task now)."""
        with self.db.write() as conn:
            now = self._now(conn)
            # The row exists from the first attempt on; concurrent first attempts insert it once.
            insert_ignore(conn, leases, {"name": name, "holder": None, "expires_at": None, "last_run_at": None})
            free = [leases.c.expires_at.is_(None), leases.c.expires_at <= now]
            if takeover:
                free.append(leases.c.holder == holder)
            taken = conn.execute(update(leases).where(
                leases.c.name == name,
                or_(*free),
                or_(leases.c.last_run_at.is_(None), leases.c.last_run_at <= now - timedelta(seconds=every_seconds)),
            ).values(holder=holder, expires_at=now + timedelta(seconds=ttl_seconds), last_run_at=now)).rowcount
        return bool(taken)

    def renew(self, name: str, holder: str, ttl_seconds: int) -> bool:
        """Extend `holder`'s lease to `ttl_seconds` from now; False when it no longer holds it
        (it expired and another node took it, or it was released)."""
        with self.db.write() as conn:
            now = self._now(conn)
            return bool(conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder)
                                     .values(expires_at=now + timedelta(seconds=ttl_seconds))).rowcount)

    def release(self, name: str, holder: str) -> None:
        """Free the lease if `holder` still holds it; `last_run_at` stays (the next run is due
        `every_seconds` after this one started)."""
        with self.db.write() as conn:
            conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder)
                         .values(holder=None, expires_at=None))

    def last_run(self, name: str) -> datetime | None:
        with self.db.read() as conn:
            return conn.execute(select(leases.c.last_run_at).where(leases.c.name == name)).scalar()


class LeaseLost(Exception):
    """The lease expired and another node took it: stop, that node is doing the work now."""


@dataclass
class Lease:
    """A held lease, handed to the task: `renew()` between batches keeps it while the task runs.
    It writes at most once per third of the ttl, so calling it per item costs a clock read."""

    store: LeaseStore
    name: str
    holder: str
    ttl_seconds: int
    _renewed: float = field(default_factory=lambda: time.monotonic())

    def renew(self) -> None:
        """Renew when a third of the ttl has passed; raises LeaseLost when another node holds it."""
        if time.monotonic() - self._renewed < self.ttl_seconds / 3:
            return
        if not self.store.renew(self.name, self.holder, self.ttl_seconds):
            raise LeaseLost(self.name)
        self._renewed = time.monotonic()


def once(store: LeaseStore, name: str, holder: str, every_seconds: int, fn: Callable[[Lease], T],
         ttl_seconds: int | None = None, takeover: bool = False) -> T | None:
    """Run `fn` if this node takes the lease `name` (see LeaseStore.try_acquire), releasing it
    afterwards; returns what `fn` returned, or None when another node ran it within `every_seconds`
    or holds it now, or when `fn` lost the lease midway (LeaseLost). `ttl_seconds` (default: the
    interval, at least an hour) bounds how long a dead node's lease blocks the task; `fn` renews
    it through its Lease while it works."""
    ttl = ttl_seconds or max(every_seconds, 3600)
    if not store.try_acquire(name, holder, ttl, every_seconds, takeover):
        return None
    try:
        return fn(Lease(store, name, holder, ttl))
    except LeaseLost:
        log.warning("%s: the lease expired midway and another node took it; stopped", name)
        return None
    finally:
        store.release(name, holder)
