"""The event outbox with real processes: a `dockyard serve` SIGKILLed the moment it has
acknowledged a manifest push still leaves exactly one "manifest pushed" event, and the node that
comes up next dispatches it to the audit log exactly once.

Before the outbox, the push's audit record sat in a buffer flushed every second: this kill lost it.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dockyard.meta.db import Database
from dockyard.meta.tables import audit_events, events
from tests.conftest import ServerProcess, _database, free_port
from tests.integration.helpers import dumps, sha256, wait_for

pytestmark = pytest.mark.e2e
ROUNDS = 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _push(c: httpx.Client, repo: str, tag: str) -> str:
    config, layer = dumps({"architecture": "amd64", "os": "linux", "tag": tag}), f"layer {tag}".encode()
    for blob in (config, layer):
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
        assert r.status_code == 201, r.text
    body = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": len(config)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": len(layer)}]})
    r = c.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text  # acknowledged: the node is killed right after this
    return sha256(body)


def _pushed(db: Database, target: str) -> list[tuple[str | None, bool]]:
    """(digest, dispatched?) of each manifest.pushed event for `target`."""
    with db.read() as conn:
        rows = conn.execute(select(events.c.detail, events.c.dispatched_at)
                            .where(events.c.kind == "manifest.pushed", events.c.target == target)).all()
    return [(json.loads(d)["digest"], at is not None) for d, at in rows]


def _audited(db: Database, target: str) -> int:
    with db.read() as conn:
        return len(conn.execute(select(audit_events.c.id).where(audit_events.c.action == "manifest.push",
                                                                audit_events.c.target == target)).all())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_node_killed_right_after_acknowledging_a_push_leaves_one_event(
        tmp_path: Path, backend: str) -> None:
    db_url = _database(backend, tmp_path, migrated=False)  # each node migrates at start, as in production
    data, password, repo = tmp_path / "data", "ev-" + uuid.uuid4().hex[:8], "outbox/app"
    env = {"DOCKYARD_DATABASE__URL": db_url}
    undispatched_at_kill = 0
    digests = {}
    for i in range(ROUNDS):
        node = ServerProcess(data, free_port(), password, env=env).start()
        try:
            with httpx.Client(base_url=node.url, auth=(node.user, node.password), timeout=30) as c:
                tag = f"v{i}"
                digests[tag] = _push(c, repo, tag)
        finally:
            node.stop(signal.SIGKILL)
        db = Database(db_url)
        try:
            found = _pushed(db, f"{repo}:{tag}")
            assert [d for d, _ in found] == [digests[tag]], found  # committed with the manifest, once
            undispatched_at_kill += not found[0][1]
        finally:
            db.dispose()
    # the next node dispatches what the killed ones left, each event once
    node = ServerProcess(data, free_port(), password, env=env).start()
    db = Database(db_url)
    try:
        for tag, digest in digests.items():
            target = f"{repo}:{tag}"
            wait_for(lambda: _audited(db, target) > 0, 30, f"the audit record of {target}")  # noqa: B023
            assert _pushed(db, target) == [(digest, True)]
        listed = httpx.get(f"{node.url}/api/v1/audit", params={"action": "manifest.push"},
                           auth=(node.user, node.password), timeout=10).json()["items"]
        assert sorted(e["target"] for e in listed) == sorted(f"{repo}:{tag}" for tag in digests)  # once each
        assert all(_audited(db, f"{repo}:{tag}") == 1 for tag in digests)
    finally:
        db.dispose()
        node.stop()
    # A kill within moments of the answer usually beats the half-second dispatch tick; the test
    # holds either way, but it should have caught the node at least once before dispatching.
    assert undispatched_at_kill >= 1, "every event was dispatched before its node was killed"
