"""The event outbox (core/events.py, meta/events.py) on SQLite and PostgreSQL: each change of the
registry's content writes its events in its own transaction, and the dispatcher hands each event
to the audit log (inline) and to job subscribers exactly once, with any number of nodes.

The "node dies right after acknowledging a push" case is in tests/e2e/test_jobs_e2e.py (a real
process, SIGKILL).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from dockyard.core.events import SYSTEM, Event, Origin
from dockyard.meta.db import Database
from dockyard.meta.events import EventStore, Subscriber
from dockyard.meta.jobs import JobStore
from dockyard.meta.namespaces import NamespaceStore
from tests.integration.helpers import dumps, push_blob, push_image, put_manifest, run_together, sha256


def _events(services: Any, after: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.kind, e.target, e.detail) for e in services.events.list(after_id=after, limit=1000)]


def _last_id(services: Any) -> int:
    found = services.events.list(limit=100000)
    return found[-1].id if found else 0


def _audit(services: Any, action: str) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.target, e.remote) for e in services.audit.query(action=action, limit=1000)]


def test_a_push_records_its_events_with_the_change(app_client: TestClient, services: Any) -> None:
    first, _ = push_image(app_client, "ev/app", "v1", layer=b"one")
    found = _events(services)
    assert [k for k, _, _ in found] == ["repository.created", "manifest.pushed", "tag.moved"]
    assert found[0][1] == "ev/app"
    kind, target, detail = found[1]
    assert target == "ev/app:v1" and detail["digest"] == first and detail["tags"] == ["v1"] and detail["size"] > 0
    assert found[2] == ("tag.moved", "ev/app:v1", {"tag": "v1", "digest": first, "previous": None})
    assert {e.actor for e in services.events.list()} == {"admin"}

    mark = _last_id(services)
    second, _ = push_image(app_client, "ev/app", "v1", layer=b"two")  # the tag moves
    assert [(k, t) for k, t, _ in _events(services, mark)] == [("manifest.pushed", "ev/app:v1"), ("tag.moved", "ev/app:v1")]
    assert _events(services, mark)[1][2] == {"tag": "v1", "digest": second, "previous": first}

    mark = _last_id(services)
    push_image(app_client, "ev/app", "v1", layer=b"two")  # the same manifest again: pushed, no tag moved
    assert [k for k, _, _ in _events(services, mark)] == ["manifest.pushed"]

    mark = _last_id(services)
    config, layer = dumps({"architecture": "amd64", "os": "linux"}), b"by digest"
    push_blob(app_client, "ev/app", config)
    push_blob(app_client, "ev/app", layer)
    body = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                             "size": len(config)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer),
                              "size": len(layer)}]})
    r = app_client.put(f"/v2/ev/app/manifests/{sha256(body)}", params=[("tag", "a"), ("tag", "b")], content=body,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    found = _events(services, mark)
    assert found[0][:2] == ("manifest.pushed", f"ev/app@{sha256(body)}") and found[0][2]["tags"] == ["a", "b"]
    assert [(k, t) for k, t, _ in found[1:]] == [("tag.moved", "ev/app:a"), ("tag.moved", "ev/app:b")]


def test_a_refused_push_records_nothing(app_client: TestClient, services: Any) -> None:
    body = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"{}"), "size": 2},
                  "layers": []})
    assert put_manifest(app_client, "ev/none", "v1", body).status_code == 400  # MANIFEST_BLOB_UNKNOWN
    assert _events(services) == []  # not even repository.created: the transaction rolled back


def test_deletes_record_their_events(app_client: TestClient, services: Any) -> None:
    digest, _ = push_image(app_client, "ev/del", "v1")
    r = app_client.put("/v2/ev/del/manifests/v2", content=_manifest_of(services, digest),
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201
    mark = _last_id(services)
    assert app_client.delete("/v2/ev/del/manifests/v2").status_code == 202
    assert app_client.delete(f"/v2/ev/del/manifests/{digest}").status_code == 202
    layer = sha256(b"layer of ev/del:v1")
    assert app_client.delete(f"/v2/ev/del/blobs/{layer}").status_code == 202
    assert _events(services, mark) == [
        ("tag.deleted", "ev/del:v2", {"tag": "v2", "digest": digest}),
        ("manifest.deleted", f"ev/del@{digest}", {"digest": digest, "tags": ["v1"]}),
        ("blob.deleted", f"ev/del@{layer}", {"digest": layer}),
    ]
    # what was not there records nothing
    mark = _last_id(services)
    assert app_client.delete("/v2/ev/del/manifests/v9").status_code == 404
    assert app_client.delete(f"/v2/ev/del/blobs/{layer}").status_code == 404
    assert _events(services, mark) == []


def _manifest_of(services: Any, digest: str) -> bytes:
    data = services.content.manifest_content(digest)
    assert data is not None
    return bytes(data)


def test_repositories_created_and_deleted_through_the_management_api(app_client: TestClient, services: Any) -> None:
    assert app_client.post("/api/v1/namespaces", json={"name": "evns"}).status_code == 201
    assert app_client.post("/api/v1/repositories", json={"name": "evns/one", "visibility": "public"}).status_code == 201
    assert app_client.post("/api/v1/repositories", json={"name": "evns/two"}).status_code == 201
    assert app_client.delete("/api/v1/repositories/evns/one").status_code == 204
    assert app_client.delete("/api/v1/namespaces/evns").status_code == 204
    assert _events(services) == [
        ("repository.created", "evns/one", {"visibility": "public"}),
        ("repository.created", "evns/two", {}),
        ("repository.deleted", "evns/one", {}),
        ("repository.deleted", "evns/two", {"namespace": "evns"}),
    ]
    services.events.dispatch_all()
    assert [(a, t) for a, t, _ in _audit(services, "repository.")] == [
        ("admin", "evns/two"), ("admin", "evns/one"), ("admin", "evns/two"), ("admin", "evns/one")]


def test_the_audit_log_is_a_subscriber_that_hears_each_event_once(app_client: TestClient, services: Any) -> None:
    digest, _ = push_image(app_client, "ev/audit", "v1")
    assert app_client.delete("/v2/ev/audit/manifests/v1").status_code == 202
    services.events.dispatch_all()  # what the worker's tick (every half second) does
    assert services.events.dispatch_all() == 0
    assert _audit(services, "manifest.push") == [("admin", "ev/audit:v1", "testclient")]
    assert _audit(services, "tag.delete") == [("admin", "ev/audit:v1", "testclient")]
    assert _audit(services, "repository.create") == [("admin", "ev/audit", "testclient")]
    # the management API's audit query dispatches first: a push a moment ago is there
    push_image(app_client, "ev/audit", "v2")
    listed = app_client.get("/api/v1/audit", params={"action": "manifest.push"}).json()
    assert [e["target"] for e in listed["items"]] == ["ev/audit:v2", "ev/audit:v1"]


def test_job_subscribers_get_one_job_per_event(db_url: str) -> None:
    db = Database(db_url)
    try:
        jobs = JobStore(db)
        events = EventStore(db, jobs)
        events.subscribers.append(Subscriber("hooks", frozenset({"repository.created"}), job_kind="hook"))
        names = NamespaceStore(db)
        assert names.create_repository("x/a", None, None, None, Origin("alice", "10.0.0.1"))
        assert names.create_repository("x/b", None, None, None)
        assert names.delete_repository("x/a")
        assert events.dispatch() == 3
        made = jobs.list(kind="hook", limit=10)
        assert sorted(j.args["event"]["target"] for j in made) == ["x/a", "x/b"]
        first = next(j for j in made if j.args["event"]["target"] == "x/a")
        assert first.args["event"]["kind"] == "repository.created" and first.args["event"]["actor"] == "alice"
        assert first.args["event"]["remote"] == "10.0.0.1"
        assert events.dispatch() == 0 and len(jobs.list(kind="hook", limit=10)) == 2
    finally:
        db.dispose()


def test_a_failing_subscriber_leaves_the_batch_for_the_next_dispatch(db_url: str) -> None:
    db = Database(db_url)
    try:
        events = EventStore(db, JobStore(db))
        heard: list[str] = []
        failing = [True]

        def inline(conn: Any, event: Event) -> None:
            if failing[0]:
                raise RuntimeError("subscriber down")
            heard.append(event.target)

        events.subscribers.append(Subscriber("flaky", inline=inline))
        NamespaceStore(db).create_repository("y/a", None, None, None, SYSTEM)
        with pytest.raises(RuntimeError):
            events.dispatch()
        failing[0] = False
        assert events.dispatch() == 1 and heard == ["y/a"]
        assert events.dispatch() == 0 and heard == ["y/a"]
    finally:
        db.dispose()


def test_nodes_dispatching_at_once_hand_each_event_on_once(nodes: list[Database]) -> None:
    heard: list[int] = []
    stores = []
    for db in nodes:
        store = EventStore(db, JobStore(db))
        store.subscribers.append(Subscriber("count", inline=lambda conn, event: heard.append(event.id)))
        stores.append(store)
    names = NamespaceStore(nodes[0])
    for i in range(300):
        names.create_repository(f"z/r{i}", None, None, None)

    def drain(store: EventStore) -> int:
        total = 0
        for _ in range(50):
            total += store.dispatch(limit=7)
        return total

    counts = run_together([lambda s=s: drain(s) for s in stores])  # type: ignore[misc]
    for store in stores:
        store.dispatch_all()
    assert sorted(heard) == sorted(set(heard)) and len(heard) == 300, (len(heard), len(set(heard)))
    assert sum(counts) <= 300


def test_dispatched_events_are_purged_after_the_retention(db_url: str) -> None:
    db = Database(db_url)
    try:
        events = EventStore(db, JobStore(db))
        NamespaceStore(db).create_repository("p/a", None, None, None)
        assert events.purge(0) == 0  # not dispatched: kept
        events.dispatch_all()
        assert events.purge(3600) == 0
        assert events.purge(-1) == 1 and events.list() == []
    finally:
        db.dispose()
