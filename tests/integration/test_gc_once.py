"""GC and the upload purge run once cluster-wide (GarbageCollector.run_if_due,
purge_uploads_if_due): two "nodes" (two collectors, each with its own Database pool) on one
database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from dockyard.meta import leases as leases_module
from dockyard.meta.db import Database
from dockyard.meta.tables import leases
from dockyard.registry.gc import GC_LEASE, UPLOAD_PURGE_LEASE, GarbageCollector, GcReport
from tests.integration.helpers import run_together

EVERY = 600
TIMEOUT = 30.0


@pytest.fixture
def nodes(services: Any) -> Iterator[list[GarbageCollector]]:
    """Two collectors on the test's database and blob store; each counts its upload purges."""
    dbs = [Database(services.db.url) for _ in range(2)]
    collectors = []
    for db in dbs:
        purges: list[int] = []
        gc = GarbageCollector(db, services.gc.store, services.settings.gc, lambda p=purges: p.append(1) or 0)
        gc.purges = purges  # type: ignore[attr-defined]
        collectors.append(gc)
    yield collectors
    for db in dbs:
        db.dispose()


def _time_passes(db: Database, name: str, seconds: int) -> None:
    """The lease's last run started `seconds` earlier than it did."""
    with db.write() as conn:
        started = conn.execute(select(leases.c.last_run_at).where(leases.c.name == name)).scalar_one()
        conn.execute(update(leases).where(leases.c.name == name).values(last_run_at=started - timedelta(seconds=seconds)))


def test_gc_runs_on_one_node_per_interval(nodes: list[GarbageCollector], services: Any) -> None:
    a, b = nodes
    ran = run_together([lambda: a.run_if_due("node-a", EVERY), lambda: b.run_if_due("node-b", EVERY)])
    assert [isinstance(r, GcReport) for r in ran].count(True) == 1, ran
    assert ran.count(None) == 1
    # Again at once: the last run started less than an interval ago, on either node.
    assert a.run_if_due("node-a", EVERY) is None and b.run_if_due("node-b", EVERY) is None
    _time_passes(services.db, GC_LEASE, EVERY)
    ran = run_together([lambda: a.run_if_due("node-a", EVERY), lambda: b.run_if_due("node-b", EVERY)])
    assert [isinstance(r, GcReport) for r in ran].count(True) == 1, ran


def test_no_second_gc_while_one_runs(nodes: list[GarbageCollector], monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with no interval at all, a node does not start GC while another holds the lease;
    after it, one may."""
    a, b = nodes
    during: list[GcReport | None] = []
    real_run = a.run

    def run(**kwargs: Any) -> GcReport:
        during.append(b.run_if_due("node-b", 0))  # a is collecting now
        return real_run(**kwargs)

    monkeypatch.setattr(a, "run", run)
    assert isinstance(a.run_if_due("node-a", 0), GcReport)
    assert during == [None]
    assert isinstance(b.run_if_due("node-b", 0), GcReport), "released at the end"


class Clock:
    """Stands in for the time module in meta/leases.py: monotonic() is what the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_long_gc_renews_its_lease(nodes: list[GarbageCollector], monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweeps' progress renews the lease once a third of its ttl has passed."""
    a, _ = nodes
    clock = Clock()
    monkeypatch.setattr(leases_module, "time", clock)
    renewed: list[bool] = []
    real_renew = a.leases.renew

    def renew(name: str, holder: str, ttl_seconds: int) -> bool:
        renewed.append(real_renew(name, holder, ttl_seconds))
        return renewed[-1]

    monkeypatch.setattr(a.leases, "renew", renew)
    real_run = a.run

    def run(progress: Any = None, **kwargs: Any) -> GcReport:
        progress("manifests", 1)
        assert renewed == [], "renewed too early"
        clock.now += 3600  # an hour into a run whose lease lasts an hour
        progress("manifests", 1)
        assert renewed == [True]
        return real_run(progress=progress, **kwargs)

    monkeypatch.setattr(a, "run", run)
    assert isinstance(a.run_if_due("node-a", EVERY), GcReport)


def test_the_upload_purge_runs_on_one_node_per_interval(nodes: list[GarbageCollector], services: Any) -> None:
    a, b = nodes
    ran = run_together([lambda: a.purge_uploads_if_due("node-a", EVERY), lambda: b.purge_uploads_if_due("node-b", EVERY)])
    assert sorted(ran, key=repr) == [0, None]
    assert len(a.purges) + len(b.purges) == 1  # type: ignore[attr-defined]
    assert a.purge_uploads_if_due("node-a", EVERY) is None and b.purge_uploads_if_due("node-b", EVERY) is None
    assert a.leases.last_run(GC_LEASE) is None, "its own lease: GC is not held back by the purge"
    _time_passes(services.db, UPLOAD_PURGE_LEASE, EVERY)
    assert b.purge_uploads_if_due("node-b", EVERY) == 0
    assert len(a.purges) + len(b.purges) == 2  # type: ignore[attr-defined]
