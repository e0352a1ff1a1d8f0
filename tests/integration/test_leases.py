"""Leases (meta/leases.py) and cluster facts (meta/cluster.py), on SQLite and PostgreSQL.

"Nodes" here are separate Database objects (their own connection pools) on one database, as two
`dockyard serve` processes would have; races start from a barrier in threads.
"""

from __future__ import annotations

import time

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dockyard.meta.cluster import ClusterFacts
from dockyard.meta.db import Database
from dockyard.meta.leases import Lease, LeaseLost, LeaseStore, node_holder, once
from dockyard.meta.tables import leases
from tests.integration.helpers import run_together

HOUR = 3600
TIMEOUT = 30.0




def _rewind(db: Database, name: str, seconds: int) -> None:
    """Move the lease's times `seconds` into the past, as if that much time had passed."""
    with db.write() as conn:
        row = conn.execute(select(leases.c.expires_at, leases.c.last_run_at).where(leases.c.name == name)).one()
        back = timedelta(seconds=seconds)
        conn.execute(update(leases).where(leases.c.name == name).values(
            expires_at=row.expires_at - back if row.expires_at else None,
            last_run_at=row.last_run_at - back if row.last_run_at else None))


def test_one_holder_at_a_time_and_once_per_interval(nodes: list[Database]) -> None:
    a, b = LeaseStore(nodes[0]), LeaseStore(nodes[1])
    assert a.try_acquire("gc", "a", HOUR, 60)
    assert not b.try_acquire("gc", "b", HOUR, 0), "held by a"
    assert not a.try_acquire("gc", "a", HOUR, 0), "held, by a itself too"
    a.release("gc", "a")
    assert not b.try_acquire("gc", "b", HOUR, 60), "released, but the last run started less than 60 s ago"
    assert b.try_acquire("gc", "b", HOUR, 0), "released and due"


def test_after_the_interval_the_next_run_is_due(nodes: list[Database]) -> None:
    store = LeaseStore(nodes[0])
    assert store.try_acquire("purge", "a", HOUR, 600)
    store.release("purge", "a")
    first = store.last_run("purge")
    assert first is not None
    _rewind(nodes[0], "purge", 599)
    assert not LeaseStore(nodes[1]).try_acquire("purge", "b", HOUR, 600)
    _rewind(nodes[0], "purge", 601)
    assert LeaseStore(nodes[1]).try_acquire("purge", "b", HOUR, 600)


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew(nodes: list[Database]) -> None:
    a, b = LeaseStore(nodes[0]), LeaseStore(nodes[1])
    assert a.try_acquire("gc", "a", 60, 60)
    assert a.renew("gc", "a", 60)
    assert not b.renew("gc", "b", 60), "b does not hold it"
    _rewind(nodes[0], "gc", 120)  # a died: its lease ran out, and the run is due again
    assert b.try_acquire("gc", "b", 60, 60)
    assert not a.renew("gc", "a", 60)
    a.release("gc", "a")  # a no-op: a no longer holds it
    assert not LeaseStore(nodes[2]).try_acquire("gc", "c", 60, 0), "b still holds it"


def test_release_keeps_the_time_of_the_last_run(nodes: list[Database]) -> None:
    store = LeaseStore(nodes[0])
    assert store.try_acquire("gc", "a", HOUR, 0)
    started = store.last_run("gc")
    store.release("gc", "a")
    assert store.last_run("gc") == started
    assert not store.renew("gc", "a", HOUR), "released"


@pytest.mark.parametrize("existing", [False, True])
def test_of_racing_nodes_exactly_one_takes_the_lease(nodes: list[Database], existing: bool) -> None:
    """Four nodes, two threads each, at the same moment: one winner, whether the lease row is
    created by the race (first run ever) or is there already."""
    if existing:
        store = LeaseStore(nodes[0])
        assert store.try_acquire("gc", "setup", HOUR, 0)
        store.release("gc", "setup")
        _rewind(nodes[0], "gc", 2 * HOUR)
    stores = [LeaseStore(db) for db in nodes for _ in range(2)]
    won = run_together([lambda s=s, i=i: s.try_acquire("gc", f"node{i}", HOUR, HOUR)  # type: ignore[misc]
                 for i, s in enumerate(stores)])
    assert sum(won) == 1, won


def test_once_runs_releases_and_reports(nodes: list[Database]) -> None:
    store = LeaseStore(nodes[0])
    ran: list[str] = []
    assert once(store, "job", "a", 60, lambda lease: ran.append(lease.holder) or 7) == 7
    assert ran == ["a"]
    assert once(LeaseStore(nodes[1]), "job", "b", 60, lambda _lease: ran.append("b")) is None, "ran < 60 s ago"
    assert ran == ["a"]

    def fails(_lease: Lease) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        once(store, "other", "a", 0, fails)
    assert once(store, "other", "b", 0, lambda _lease: "ran"), "a failed run releases the lease"


def test_a_long_run_renews_and_stops_when_the_lease_is_lost(nodes: list[Database]) -> None:
    store = LeaseStore(nodes[0])

    def work(lease: Lease) -> str:
        lease.renew()  # fresh: no write
        lease._renewed -= lease.ttl_seconds  # as if a long while had passed
        lease.renew()  # writes: still ours
        _rewind(nodes[0], "long", 2 * HOUR)
        assert LeaseStore(nodes[1]).try_acquire("long", "thief", HOUR, 60)  # expired: taken over
        lease._renewed -= lease.ttl_seconds
        lease.renew()  # raises LeaseLost
        return "not reached"

    assert once(store, "long", "a", 60, work) is None
    assert not LeaseStore(nodes[2]).try_acquire("long", "c", HOUR, 0), "the thief's lease was left alone"
    with pytest.raises(LeaseLost):
        # Last renewed an hour ago (not at monotonic 0.0: a machine up for less than ttl/3 would skip the write)
        Lease(store, "long", "a", HOUR, time.monotonic() - HOUR).renew()


def test_node_holders_differ_and_fit_the_column() -> None:
    names = {node_holder() for _ in range(10)}
    assert len(names) == 10 and all(len(n) <= 64 for n in names)


# -- cluster facts -------------------------------------------------------------------------------
def test_a_fact_is_made_once_and_read_back(nodes: list[Database]) -> None:
    facts = ClusterFacts(nodes[0])
    assert facts.get("cluster_id") is None
    assert facts.get_or_create("cluster_id", lambda: "first") == "first"
    assert facts.get_or_create("cluster_id", lambda: "second") == "first"
    assert ClusterFacts(nodes[1]).get("cluster_id") == "first"


def test_racing_nodes_all_get_the_same_fact(nodes: list[Database]) -> None:
    facts = [ClusterFacts(db) for db in nodes for _ in range(2)]
    values = run_together([lambda f=f, i=i: f.get_or_create("cluster_id", lambda: f"node{i}")  # type: ignore[misc]
                    for i, f in enumerate(facts)])
    assert len(set(values)) == 1 and values[0].startswith("node"), values
