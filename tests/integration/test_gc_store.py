"""The queries of garbage collection (meta/gc.py): streamed, never a whole table at once.

What GC removes and keeps, and its safety while pushes go on, are tests/integration/test_gc.py's;
here: its reads are bounded (one repository's manifests at a time, blobs and files in batches) and
give the same answers when the registry is many batches long.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from starlette.testclient import TestClient

from dockyard.meta import gc as gc_store
from dockyard.meta.db import utcnow
from dockyard.meta.tables import blobs, manifests, repository_blobs
from tests.integration.helpers import push_blob, push_image, sha256

TABLES = ("manifests", "tags", "manifest_children", "manifest_blobs", "blobs", "repository_blobs")


def _age(services: Any) -> None:
    past = utcnow() - timedelta(hours=2)
    with services.db.write() as conn:
        conn.execute(update(blobs).values(created_at=past))
        conn.execute(update(repository_blobs).values(linked_at=past))
        conn.execute(update(manifests).values(created_at=past))


@pytest.fixture
def selects(services: Any) -> Iterator[list[str]]:
    """Every SELECT the database runs while the test does."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(" ".join(statement.split()))

    event.listen(services.db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(services.db.engine, "before_cursor_execute", record)


def _whole_table_reads(statements: list[str]) -> list[str]:
    """SELECTs from a GC table with neither a WHERE nor a LIMIT: the whole table into memory."""
    pattern = re.compile(r"\bFROM (" + "|".join(TABLES) + r")\b", re.IGNORECASE)
    return [s for s in statements if pattern.search(s) and " WHERE " not in s.upper() and " LIMIT " not in s.upper()]


@pytest.mark.parametrize("dry_run", [True, False])
def test_gc_never_reads_a_whole_table(app_client: TestClient, services: Any, selects: list[str], dry_run: bool) -> None:
    push_image(app_client, "stream/a", "v1")
    push_image(app_client, "stream/b", None)  # untagged: a candidate
    push_blob(app_client, "stream/a", b"unreferenced" * 10)
    _age(services)
    selects.clear()
    report = services.gc.run(dry_run=dry_run, delete_untagged=True)
    assert len(report.manifests) == 1 and len(report.blobs) == 4  # b's manifest, config, layer; the lone blob
    assert selects, "the listener saw nothing"
    assert _whole_table_reads(selects) == []


def test_batches_give_the_same_answers_as_one_read(app_client: TestClient, services: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_store, "BATCH", 2)  # every scan crosses several batches
    kept, doomed = set(), set()
    for i in range(5):
        kept.add(push_image(app_client, f"batch/r{i}", "v1")[0])
        doomed.add(push_image(app_client, f"batch/r{i}", None, layer=f"untagged {i}".encode())[0])
    loose = {push_blob(app_client, "batch/r0", f"loose {i}".encode()) for i in range(5)}
    _age(services)
    dry = services.gc.run(dry_run=True, delete_untagged=True)
    assert set(dry.manifests) == doomed
    untagged_blobs = {sha256(f"untagged {i}".encode()) for i in range(5)}
    assert loose | doomed | untagged_blobs <= set(dry.blobs)
    report = services.gc.run(delete_untagged=True)
    assert set(report.manifests) == doomed and set(report.blobs) == set(dry.blobs)
    with services.db.read() as conn:
        left = set(conn.execute(select(manifests.c.digest)).scalars())
    assert left == kept
    assert app_client.get("/v2/batch/r3/manifests/v1").status_code == 200


def test_a_batch_deletes_only_what_is_still_unreferenced(app_client: TestClient, services: Any) -> None:
    """One DELETE re-checks the whole batch: a blob a manifest references, or one linked within
    the grace period, stays; the files of exactly the rows removed are handed to the store."""
    push_image(app_client, "batchdel/app", "v1", layer=b"referenced layer")
    loose = [push_blob(app_client, "batchdel/app", f"loose {i}".encode()) for i in range(3)]
    _age(services)
    fresh = push_blob(app_client, "batchdel/app", b"linked just now")  # within the grace period
    removed_files: list[list[str]] = []
    cutoff = utcnow() - timedelta(hours=1)
    wanted = [*loose, sha256(b"referenced layer"), fresh, "sha256:" + "0" * 64]
    gone = gc_store.GcStore(services.db).delete_blobs_if_unreferenced(wanted, cutoff, removed_files.append)
    assert sorted(gone) == sorted(loose) and removed_files == [gone]
    with services.db.read() as conn:
        left = set(conn.execute(select(blobs.c.digest)).scalars())
    assert not left & set(loose) and {sha256(b"referenced layer"), fresh} <= left
    assert app_client.get("/v2/batchdel/app/manifests/v1").status_code == 200
