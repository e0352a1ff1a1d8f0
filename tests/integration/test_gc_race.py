"""GC against a push on another node, on PostgreSQL (READ COMMITTED), interleaved step by step.

GC deletes an untagged manifest only if, inside its delete, no tag points to it and no index of
its repository lists it. Under READ COMMITTED that re-check cannot see a push that has not
committed yet, so without row locks an index (or a tag) could be committed pointing at a manifest
GC deleted in the meantime. Here one side is held at a chosen point of its open transaction while
the other runs as far as it can (to its end, or until it waits for a row lock the first holds);
then the first goes on. Whatever the order, no index may list, and no tag point to, a manifest that
is not there. SQLite serialises writers, so only PostgreSQL can interleave them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import and_, event, exists, select, text

from dockyard.core.errors import ManifestBlobUnknown
from dockyard.core.manifest import parse_manifest
from dockyard.meta import content as content_module
from dockyard.meta.content import ContentStore
from dockyard.meta.db import Database
from dockyard.meta.gc import GcStore
from dockyard.meta.migrate import upgrade
from dockyard.meta.raw import RawCursor
from dockyard.meta.tables import manifest_children, manifests, repositories, tags
from tests.conftest import PG_URL, _pg_database
from tests.integration.helpers import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, dumps, image_manifest, index_manifest, sha256

pytestmark = pytest.mark.postgres

REPO = "race/app"
TIMEOUT = 30.0  # seconds any step may take; the steps themselves take milliseconds


@pytest.fixture
def db() -> Iterator[Database]:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("DOCKYARD_TEST_POSTGRES is not set: run the tests through scripts/test")
        pytest.skip("PostgreSQL not configured (run through scripts/test)")
    database = Database(_pg_database())
    upgrade(database)
    yield database
    database.dispose()


class Pause:
    """Holds the thread that `arm()`ed it at `here()` until `release` is set."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.thread: int | None = None

    def arm(self) -> None:
        self.thread = threading.get_ident()

    def here(self) -> None:
        if threading.get_ident() == self.thread and not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(TIMEOUT), "never released"


def _pause_push_before_commit(monkeypatch: pytest.MonkeyPatch, pause: Pause) -> None:
    """The push's raw transaction stops after its last statement, before its commit."""

    class Cursor(RawCursor):
        def execute(self, sql: str, params: Any = ()) -> int:
            n = super().execute(sql, params)
            if sql.startswith("UPDATE repositories SET last_push_at"):
                pause.here()
            return n

    monkeypatch.setattr(content_module, "RawCursor", Cursor)


def _pause_gc_at_delete(db: Database, pause: Pause, when: str) -> None:
    """GC's transaction stops just before or just after its DELETE FROM manifests."""

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("DELETE FROM manifests"):
            pause.here()

    event.listen(db.engine, f"{when}_cursor_execute", hook)


def _lock_waiters(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                     " AND wait_event_type = 'Lock'")).scalar_one())


def _interleave(first: Callable[[], Any], second: Callable[[], Any], pause: Pause, db: Database) -> tuple[Any, Any, bool]:
    """Run `first` up to its pause, then `second` until it ends or waits for a lock, then let
    `first` go on; returns what each returned or raised, and whether `second` waited."""
    results: dict[str, Any] = {}

    def run(name: str, fn: Callable[[], Any], arm: bool) -> None:
        if arm:
            pause.arm()
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001  (the outcome under test)
            results[name] = e

    t1 = threading.Thread(target=run, args=("first", first, True))
    t2 = threading.Thread(target=run, args=("second", second, False))
    t1.start()
    assert pause.reached.wait(TIMEOUT), f"the first never reached its pause: {results}"
    t2.start()
    deadline = time.monotonic() + TIMEOUT
    waited = False
    while t2.is_alive() and not waited and time.monotonic() < deadline:
        waited = _lock_waiters(db) > 0
        time.sleep(0.01)
    assert waited or not t2.is_alive(), "the second neither ended nor waited for a lock"
    pause.release.set()
    t1.join(TIMEOUT)
    t2.join(TIMEOUT)
    assert not t1.is_alive() and not t2.is_alive(), "a side is stuck"
    return results["first"], results["second"], waited


def _image(content: ContentStore, name: str) -> tuple[str, bytes]:
    """An untagged image manifest (its blobs recorded directly: no store is involved here)."""
    config, layer = dumps({"os": "linux", "architecture": "amd64", "name": name}), f"layer {name}".encode()
    for blob in (config, layer):
        content.add_blob(REPO, sha256(blob), len(blob), lambda: None)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    digest = sha256(body)
    content.put_manifest(REPO, digest, body, parse_manifest(body, OCI_MANIFEST), [])
    return digest, body


def _id(db: Database, digest: str) -> int | None:
    with db.read() as conn:
        return conn.execute(select(manifests.c.id).where(manifests.c.digest == digest)).scalar()


def _dangling(db: Database) -> list[str]:
    """Index children and tags of a repository whose manifest that repository does not hold."""
    child = manifests.alias("child")
    parent = manifests.alias("parent")
    with db.read() as conn:
        kids = conn.execute(select(manifest_children.c.child_digest)
                            .join(parent, parent.c.id == manifest_children.c.manifest_id)
                            .where(~exists().where(and_(child.c.repository_id == parent.c.repository_id,
                                                        child.c.digest == manifest_children.c.child_digest)))).scalars()
        tagged = conn.execute(select(tags.c.name).where(~exists().where(and_(
            manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.manifest_digest)))).scalars()
        return [f"child {d}" for d in kids] + [f"tag {t}" for t in tagged]


def _sides(db: Database, what: str) -> tuple[Callable[[], Any], Callable[[], Any], str, int]:
    """(push, gc, the manifest GC wants gone, its id): `what` is "index" (an index listing it is
    pushed) or "tag" (it is tagged by a PUT of its own bytes by tag)."""
    content, meta = ContentStore(db), GcStore(db)
    digest, body = _image(content, "child")
    manifest_id = _id(db, digest)
    assert manifest_id is not None
    if what == "index":
        index = index_manifest([descriptor(OCI_MANIFEST, body, digest, platform={"os": "linux", "architecture": "amd64"})])
        doc, media_type, tag = index, OCI_INDEX, "multi"
    else:
        doc, media_type, tag = body, OCI_MANIFEST, "v1"
    parsed = parse_manifest(doc, media_type)

    def push() -> None:
        content.put_manifest(REPO, sha256(doc), doc, parsed, [tag])

    def gc() -> bool:
        return meta.delete_manifest_if_unkept(manifest_id, digest)

    return push, gc, digest, manifest_id


@pytest.mark.parametrize("what", ["index", "tag"])
def test_push_first_keeps_the_manifest(db: Database, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """The push has checked the manifest and written its index or tag, not committed yet: GC
    must wait for it and then see the reference, not delete what the push is about to commit."""
    push, gc, digest, _ = _sides(db, what)
    pause = Pause()
    _pause_push_before_commit(monkeypatch, pause)
    pushed, deleted, waited = _interleave(push, gc, pause, db)
    assert waited, "GC did not wait for the push's lock"
    assert pushed is None, pushed
    assert deleted is False, "GC deleted a manifest that a concurrent push referenced"
    assert _id(db, digest) is not None
    assert _dangling(db) == []


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("what", ["index", "tag"])
def test_gc_first_never_leaves_a_dangling_reference(db: Database, what: str, when: str) -> None:
    """GC has locked (before) or deleted (after) the manifest, not committed yet: the push must
    wait for it, then either fail cleanly (an index: its child is gone, MANIFEST_BLOB_UNKNOWN)
    or store the manifest again (a tag: the PUT carries its bytes); never commit a reference to
    a manifest that GC's commit removes."""
    push, gc, digest, old_id = _sides(db, what)
    pause = Pause()
    _pause_gc_at_delete(db, pause, when)
    deleted, pushed, waited = _interleave(gc, push, pause, db)
    assert waited, "the push did not wait for GC's lock"
    assert _dangling(db) == []
    assert isinstance(deleted, bool), deleted
    if what == "index":
        if deleted:
            assert isinstance(pushed, ManifestBlobUnknown), pushed
            assert _id(db, digest) is None
        else:
            assert pushed is None, pushed
    else:
        assert pushed is None, pushed  # a tag push always succeeds: it carries the manifest
        assert _id(db, digest) is not None
        assert deleted == (_id(db, digest) != old_id)


def test_a_push_that_lost_the_race_can_be_retried(db: Database) -> None:
    """After GC won, pushing the child again and then the index works (what a client does)."""
    push, gc, digest, _ = _sides(db, "index")
    assert gc() is True
    with pytest.raises(ManifestBlobUnknown):
        push()
    _image(ContentStore(db), "child")
    push()
    assert _dangling(db) == []
    with db.read() as conn:
        assert conn.execute(select(repositories.c.name)).scalars().all() == [REPO]
