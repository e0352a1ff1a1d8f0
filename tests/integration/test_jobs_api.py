"""Jobs through the management API (/api/v1/jobs, /api/v1/gc), run by the embedded worker of the
application (its lifespan starts it), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from dockyard.app import Services
from tests.conftest import basic


def wait_job(client: TestClient, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_gc_through_the_api_is_a_job_with_a_result(app_client: TestClient, services: Services) -> None:
    queued = app_client.post("/api/v1/gc", json={"dry_run": True})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]
    job = wait_job(app_client, job_id)
    assert job["state"] == "succeeded" and job["kind"] == "gc" and job["attempts"] == 1
    assert job["result"] == {"dry_run": True, "manifests": 0, "blobs": 0, "bytes_freed": 0, "orphan_files": 0,
                             "uploads_purged": 0}
    assert job["args"] == {"dry_run": True} and job["error"] is None
    assert job["created_at"].endswith("Z") and job["finished_at"].endswith("Z")
    listed = app_client.get("/api/v1/jobs").json()
    assert set(listed) == {"jobs", "next"} and job_id in [j["id"] for j in listed["jobs"]]
    first = listed["jobs"][0]
    assert {"id", "kind", "state", "progress", "attempts", "error", "created_at", "finished_at"} <= set(first)
    actions = [(e.action, e.target) for e in services.audit.query(limit=50)]
    assert ("gc.request", f"job:{job_id}") in actions


def test_one_gc_at_a_time_and_filters(app_client: TestClient, services: Services) -> None:
    later = services.jobs.submit("gc", {"dry_run": False}, unique_key="gc", delay_seconds=3600)
    again = app_client.post("/api/v1/gc", json={})
    assert again.status_code == 202 and again.json() == {"job_id": later}, "the GC already queued"
    other = services.jobs.submit("uploads.purge", delay_seconds=3600)
    by_kind = app_client.get("/api/v1/jobs", params={"kind": "gc"}).json()["jobs"]
    assert [j["id"] for j in by_kind] == [later]
    queued = app_client.get("/api/v1/jobs", params={"state": "queued"}).json()["jobs"]
    assert {later, other} <= {j["id"] for j in queued}
    page = app_client.get("/api/v1/jobs", params={"limit": 1}).json()
    assert len(page["jobs"]) == 1 and page["next"] == page["jobs"][0]["id"]
    assert app_client.get("/api/v1/jobs", params={"state": "sleeping"}).status_code == 422


def test_cancel_a_queued_job(app_client: TestClient, services: Services) -> None:
    job_id = services.jobs.submit("uploads.purge", delay_seconds=3600)
    cancelled = app_client.post(f"/api/v1/jobs/{job_id}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    again = app_client.post(f"/api/v1/jobs/{job_id}/cancel", json={})
    assert again.status_code == 200 and again.json()["state"] == "cancelled", "a finished job stays as it is"
    assert ("job.cancel", f"job:{job_id}") in [(e.action, e.target) for e in services.audit.query(limit=50)]


def test_unknown_jobs_and_who_may_see_them(app_client: TestClient, anon_client: TestClient, services: Services) -> None:
    from dockyard.auth.passwords import hash_password

    for path in ("/api/v1/jobs/999999", "/api/v1/jobs/abc", "/api/v1/jobs/-1"):
        answer = app_client.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    assert app_client.post("/api/v1/jobs/999999/cancel", json={}).status_code == 404
    assert anon_client.get("/api/v1/jobs").status_code == 401
    assert anon_client.post("/api/v1/gc", json={}).status_code == 401
    services.users.create("carol", hash_password("carol-password"), is_admin=False)
    for method, path in (("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/1"), ("POST", "/api/v1/jobs/1/cancel"),
                         ("POST", "/api/v1/gc")):
        answer = anon_client.request(method, path, headers=basic("carol", "carol-password"), json={} if method == "POST" else None)
        assert answer.status_code == 403, (method, path, answer.text)
    assert app_client.post("/api/v1/gc", json={"dry_run": "maybe"}).status_code == 422
    assert app_client.post("/api/v1/gc", json={"surprise": 1}).status_code == 422


def test_the_image_facts_backfill_runs_once_as_a_job(app_client: TestClient, services: Services) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = services.jobs.list(kind="images.backfill", state="succeeded")
        if done:
            break
        time.sleep(0.05)
    assert len(services.jobs.list(kind="images.backfill")) == 1
