"""No two garbage collections sweep at once (GarbageCollector.run_exclusive, what the GC job
runs): two "nodes" (two collectors, each with its own Database pool) on one database, on SQLite
and PostgreSQL. That each scheduled run is enqueued once cluster-wide is tests/integration/test_jobs.py's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.meta import leases as leases_module
from dockyard.meta.db import Database
from dockyard.registry.gc import GarbageCollector, GcReport

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


def test_no_second_gc_while_one_runs(nodes: list[GarbageCollector], monkeypatch: pytest.MonkeyPatch) -> None:
    """A node does not start GC while another holds the lease; after it, one may."""
    a, b = nodes
    during: list[GcReport | None] = []
    real_run = a.run

    def run(**kwargs: Any) -> GcReport:
        during.append(b.run_exclusive("node-b"))  # a is collecting now
        return real_run(**kwargs)

    monkeypatch.setattr(a, "run", run)
    assert isinstance(a.run_exclusive("node-a"), GcReport)
    assert during == [None]
    assert isinstance(b.run_exclusive("node-b"), GcReport), "released at the end"


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
    assert isinstance(a.run_exclusive("node-a"), GcReport)
