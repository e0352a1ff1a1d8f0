"""Webhooks through the application (api/management/webhooks.py, management/webhooks.py,
registry/webhooks.py, the `webhook.deliver` job) on SQLite and PostgreSQL.

Deliveries go to a real receiver on 127.0.0.1 (tests/webhook_receiver.py), which checks the
Standard Webhooks signature with its own code; `outbound.allowed_networks` allows 127.0.0.0/8
here, except where a test shows what happens without it. The embedded worker is off: the tests
dispatch events and run job handlers themselves, and make a retry due by moving its run_at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from dockyard.app import Services, build_services, create_app
from dockyard.config import Settings, load_settings
from dockyard.meta.db import utcnow
from dockyard.meta.scans import SCAN_IMAGE
from dockyard.meta.tables import jobs, webhooks
from dockyard.meta.webhooks import WEBHOOK_DELIVER
from dockyard.registry.webhooks import MAX_ATTEMPTS
from tests.conftest import basic, hashed
from tests.integration.helpers import run_jobs as run_all
from tests.integration.helpers import OCI_CONFIG, OCI_LAYER, descriptor, dumps, image_manifest, push_blob, push_image, \
    put_manifest, sha256
from tests.unit.scan.layerkit import File, layer, os_release
from tests.webhook_receiver import Receiver

PUBLIC_URL = "https://registry.example.com"


@pytest.fixture
def settings(tmp_path: Any, db_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False},
                         scan={"db_path": str(tmp_path / "vulndb" / "advisories.sqlite")},
                         server={"public_url": PUBLIC_URL}, outbound={"allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as hook:
        yield hook


def run_jobs(services: Services, kinds: tuple[str, ...] = (WEBHOOK_DELIVER,)) -> list[Any]:
    """Webhook deliveries (and whatever else `kinds` names), run by hand: helpers.run_jobs."""
    return run_all(services, kinds)


def due_now(services: Services) -> None:
    """The backoff has passed: queued jobs may run."""
    with services.db.write() as conn:
        conn.execute(update(jobs).where(jobs.c.state == "queued").values(run_at=utcnow()))


def create(client: TestClient, ns: str, url: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/namespaces/{ns}/webhooks", json={"url": url, "events": ["image.pushed"], **fields})
    assert r.status_code == 201, r.text
    return r.json()


def deliveries(client: TestClient, ns: str, hook_id: int, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/namespaces/{ns}/webhooks/{hook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def namespace(client: TestClient, name: str) -> None:
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201


# -- delivery ------------------------------------------------------------------------------------------
def test_a_push_is_delivered_signed_in_dockyards_format(app_client: TestClient, services: Services,
                                                        receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url + "?token=abc", description="deploy staging")
    secret = hook.pop("secret")
    assert secret.startswith("whsec_") and hook["format"] == "dockyard" and hook["enabled"] is True
    listed = app_client.get("/api/v1/namespaces/team/webhooks").json()["items"]
    assert listed == [hook] and "secret" not in app_client.get(f"/api/v1/namespaces/team/webhooks/{hook['id']}").json()

    digest, _ = push_image(app_client, "team/app", "1.0")
    push_image(app_client, "team/app", None)  # by digest only: not a version anyone deploys
    push_image(app_client, "other/app", "1.0")  # another namespace
    assert run_jobs(services) == [{"status": 204, "duration_ms": pytest.approx(0, abs=10_000)}]

    [request] = receiver.requests
    assert Receiver.verify(secret, request)
    assert request.path == "/hook?token=abc"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Dockyard-Webhook/")
    payload = request.json()
    assert payload["type"] == "image.pushed" and payload["id"] == request.headers["webhook-id"]
    assert payload["data"] == {"repository": "team/app", "namespace": "team", "digest": digest, "actor": "admin",
                               "tag": "1.0", "tags": ["1.0"], "media_type": "application/vnd.oci.image.manifest.v1+json",
                               "size": payload["data"]["size"], "pull": "registry.example.com/team/app:1.0"}

    [delivery] = deliveries(app_client, "team", hook["id"])
    assert delivery["id"] == request.headers["webhook-id"] and delivery["event"] == "image.pushed"
    assert delivery["status"] == "succeeded" and delivery["body"].encode() == request.body
    [attempt] = delivery["attempts"]
    assert attempt["response_status"] == 204 and attempt["error"] is None and attempt["duration_ms"] >= 0
    assert attempt["request_headers"]["webhook-signature"] == request.headers["webhook-signature"]
    assert ["x-receiver", "test"] in attempt["response_headers"]
    assert run_jobs(services) == []  # delivered once


def test_docker_hub_format_for_matching_repositories(app_client: TestClient, services: Services,
                                                    receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url, format="dockerhub", repository="team/app-*")
    digest, _ = push_image(app_client, "team/app-web", "2.0")
    push_image(app_client, "team/worker", "2.0")  # does not match the glob
    run_jobs(services)
    [request] = receiver.requests
    assert Receiver.verify(hook["secret"], request)
    payload = request.json()
    assert payload["push_data"]["tag"] == "2.0" and payload["push_data"]["pusher"] == "admin"
    assert payload["push_data"]["images"] == [digest] and isinstance(payload["push_data"]["pushed_at"], int)
    assert payload["repository"]["repo_name"] == "team/app-web" and payload["repository"]["name"] == "app-web"
    assert payload["repository"]["namespace"] == "team" and payload["repository"]["is_private"] is True
    assert payload["repository"]["repo_url"] == f"{PUBLIC_URL}/console/repo/team/app-web"
    assert payload["callback_url"].startswith(f"{PUBLIC_URL}/api/v1/namespaces/team/webhooks/{hook['id']}/deliveries/msg_")


def test_deletions_and_finished_scans_are_delivered(app_client: TestClient, services: Services,
                                                   receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url, events=["image.deleted", "scan.finished"])
    base = layer([File("etc/os-release", os_release("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"))])
    config = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(base)]}})
    push_blob(app_client, "team/app", config)
    push_blob(app_client, "team/app", base)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, base)])
    assert put_manifest(app_client, "team/app", "1.0", body).status_code == 201
    digest = sha256(body)
    run_jobs(services, (WEBHOOK_DELIVER, SCAN_IMAGE))  # scan on push (the default): the scan, then its delivery
    [scanned] = [r.json() for r in receiver.requests]
    assert scanned["type"] == "scan.finished" and scanned["data"]["digest"] == digest
    assert scanned["data"]["status"] == "done" and scanned["data"]["repository"] == "team/app"
    assert scanned["data"]["report_url"] == f"{PUBLIC_URL}/console/repo/team/app/-/versions/{digest}/security"

    assert app_client.delete("/v2/team/app/manifests/1.0").status_code == 202
    run_jobs(services)
    deleted = receiver.requests[-1].json()
    assert deleted["type"] == "image.deleted" and deleted["data"]["tag"] == "1.0" and deleted["data"]["digest"] == digest
    assert all(Receiver.verify(hook["secret"], r) for r in receiver.requests)


# -- failures, retries, redelivery ------------------------------------------------------------------------
def test_a_failing_receiver_is_retried_and_every_attempt_is_logged(app_client: TestClient, services: Services) -> None:
    namespace(app_client, "team")
    with Receiver(fail_first=2) as receiver:
        hook = create(app_client, "team", receiver.url)
        push_image(app_client, "team/app", "1.0")
        [failed] = run_jobs(services)
        assert "the receiver answered 500" in str(failed)
        [delivery] = deliveries(app_client, "team", hook["id"])
        assert delivery["status"] == "pending" and len(delivery["attempts"]) == 1
        assert run_jobs(services) == []  # the retry waits for its backoff
        due_now(services)
        run_jobs(services)
        due_now(services)
        [done] = run_jobs(services)
        assert done["status"] == 204
        assert run_jobs(services) == []
    assert len(receiver.requests) == 3
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # the same delivery each time: receivers can drop duplicates
    assert all(Receiver.verify(hook["secret"], r) for r in receiver.requests)
    assert len({r.body for r in receiver.requests}) == 1
    [delivery] = deliveries(app_client, "team", hook["id"])
    assert delivery["status"] == "succeeded" and delivery["id"] in ids
    assert [a["response_status"] for a in delivery["attempts"]] == [500, 500, 204]
    assert [a["error"] for a in delivery["attempts"]] == ["the receiver answered 500"] * 2 + [None]
    assert "down for maintenance" in delivery["attempts"][0]["response_body"]
    assert all(isinstance(a["duration_ms"], int) and a["attempted_at"] for a in delivery["attempts"])
    job = services.jobs.list(kind=WEBHOOK_DELIVER)[0]
    assert job.state == "succeeded" and job.attempts == 3 and job.max_attempts == MAX_ATTEMPTS


def test_a_delivery_fails_after_its_last_attempt_and_can_be_redelivered(app_client: TestClient,
                                                                       services: Services) -> None:
    namespace(app_client, "team")
    with Receiver(status=503) as receiver:
        hook = create(app_client, "team", receiver.url)
        push_image(app_client, "team/app", "1.0")
        for _ in range(MAX_ATTEMPTS):
            due_now(services)
            run_jobs(services)
        [delivery] = deliveries(app_client, "team", hook["id"])
        assert delivery["status"] == "failed" and len(delivery["attempts"]) == MAX_ATTEMPTS
        assert services.jobs.list(kind=WEBHOOK_DELIVER)[0].state == "failed"

        receiver.status = 200
        r = app_client.post(f"/api/v1/namespaces/team/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver",
                            json={})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending" and len(r.json()["attempts"]) == MAX_ATTEMPTS
        run_jobs(services)
    again = receiver.requests[-1]
    assert again.headers["webhook-id"] == delivery["id"] and Receiver.verify(hook["secret"], again)
    assert again.body == receiver.requests[0].body
    one = app_client.get(f"/api/v1/namespaces/team/webhooks/{hook['id']}/deliveries/{delivery['id']}").json()
    assert one["status"] == "succeeded" and [a["response_status"] for a in one["attempts"]][-2:] == [503, 200]
    missing = app_client.post(f"/api/v1/namespaces/team/webhooks/{hook['id']}/deliveries/msg_nope/redeliver", json={})
    assert missing.status_code == 404


def test_a_redirect_is_not_followed(app_client: TestClient, services: Services, receiver: Receiver) -> None:
    namespace(app_client, "team")
    with Receiver(redirect_to=receiver.url) as redirecting:
        hook = create(app_client, "team", redirecting.url)
        push_image(app_client, "team/app", "1.0")
        run_jobs(services)
    assert len(redirecting.requests) == 1 and receiver.requests == []
    [attempt] = deliveries(app_client, "team", hook["id"])[0]["attempts"]
    assert attempt["response_status"] == 302 and attempt["error"] == "the receiver answered 302"


def test_ping(app_client: TestClient, services: Services, receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url, format="dockerhub", enabled=False)  # a ping tests it first
    r = app_client.post(f"/api/v1/namespaces/team/webhooks/{hook['id']}/ping", json={})
    assert r.status_code == 202 and r.json()["event"] == "ping" and r.json()["attempts"] == []
    run_jobs(services)
    [request] = receiver.requests
    assert Receiver.verify(hook["secret"], request)
    payload = request.json()  # Dockyard's format whatever the webhook's: a push-shaped ping could deploy
    assert payload["type"] == "ping" and payload["id"] == r.json()["id"]
    assert payload["data"]["webhook"] == hook["id"] and payload["data"]["namespace"] == "team"


# -- the outbound guard ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "message"), [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
    ("http://10.0.0.1/hook", "10.0.0.1 is private"),
    ("http://[::1]/hook", "::1 is loopback"),
    ("ftp://example.com/hook", "only http:// and https://"),
])
def test_refused_urls_are_invalid(app_client: TestClient, url: str, message: str) -> None:
    namespace(app_client, "team")
    r = app_client.post("/api/v1/namespaces/team/webhooks", json={"url": url, "events": ["image.pushed"]})
    assert r.status_code == 422 and message in r.json()["error"]["message"], r.text


def test_loopback_is_refused_unless_allowed_at_creation_and_at_delivery(
        app_client: TestClient, services: Services, settings: Settings, receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url)  # allowed here (127.0.0.0/8)
    strict = settings.model_copy(update={"outbound": settings.outbound.model_copy(update={"allowed_networks": []})})
    other = build_services(strict)  # a node of the same registry without the allowance
    try:
        with TestClient(create_app(strict, other), base_url="http://registry.test",
                        headers=basic("admin", "admin-password")) as client:
            r = client.post("/api/v1/namespaces/team/webhooks", json={"url": "http://localhost:8080/",
                                                                     "events": ["image.pushed"]})
            assert r.status_code == 422
            assert "localhost resolves to 127.0.0.1, which is loopback" in r.json()["error"]["message"]
            r = client.patch(f"/api/v1/namespaces/team/webhooks/{hook['id']}", json={"url": receiver.url + "?v=2"})
            assert r.status_code == 422 and "127.0.0.1 is loopback" in r.json()["error"]["message"]
            push_image(client, "team/app", "1.0")
            [refused] = run_jobs(other)  # the check is made again at delivery time
    finally:
        other.db.dispose()
    assert "127.0.0.1 is loopback" in str(refused) and receiver.requests == []
    [attempt] = deliveries(app_client, "team", hook["id"])[0]["attempts"]
    assert attempt["response_status"] is None and "127.0.0.1 is loopback" in attempt["error"]


def test_a_node_with_another_secrets_key_sends_nothing_unsigned(
        app_client: TestClient, services: Services, settings: Settings, receiver: Receiver, tmp_path: Any) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url)
    push_image(app_client, "team/app", "1.0")
    services.events.dispatch_all()
    wrong = settings.model_copy(update={"auth": settings.auth.model_copy(
        update={"secrets_key_file": tmp_path / "other.key"})})
    other = build_services(wrong)
    try:
        [failed] = run_jobs(other)
    finally:
        other.db.dispose()
    assert "another secrets key" in str(failed) and receiver.requests == []
    [attempt] = deliveries(app_client, "team", hook["id"])[0]["attempts"]
    assert attempt["error"].startswith("the signing secret cannot be read") and attempt["response_status"] is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"format": "dockerhub", "events": ["scan.finished"]}, "the dockerhub format describes pushes only"),
    ({"repository": "other/app"}, "a repository name or glob inside 'team'"),
    ({"repository": "*/app"}, "a repository name or glob inside 'team'"),
    ({"secret": "whsec_tooshort"}, "secret:"),
    ({"events": []}, "events"),
    ({"events": ["build.exploded"]}, "events"),
])
def test_invalid_settings_are_refused(app_client: TestClient, receiver: Receiver, fields: dict[str, Any],
                                      message: str) -> None:
    namespace(app_client, "team")
    r = app_client.post("/api/v1/namespaces/team/webhooks", json={"url": receiver.url, "events": ["image.pushed"],
                                                                  **fields})
    assert r.status_code == 422 and message in r.json()["error"]["message"], r.text


# -- secrets, changes, access ------------------------------------------------------------------------------
def test_secrets_are_encrypted_at_rest_and_rotate(app_client: TestClient, services: Services,
                                                  receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url)
    with services.db.read() as conn:
        stored = conn.execute(select(webhooks.c.secret)).scalar_one()
    assert hook["secret"] not in stored and hook["secret"].removeprefix("whsec_") not in stored
    assert stored.startswith("v1.")
    given = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # 32 bytes of the caller's choosing
    r = app_client.post(f"/api/v1/namespaces/team/webhooks/{hook['id']}/rotate-secret", json={"secret": given})
    assert r.status_code == 200 and r.json()["secret"] == given
    rotated = app_client.post(f"/api/v1/namespaces/team/webhooks/{hook['id']}/rotate-secret", json={}).json()["secret"]
    assert rotated not in (given, hook["secret"])
    push_image(app_client, "team/app", "1.0")
    run_jobs(services)
    [request] = receiver.requests
    assert Receiver.verify(rotated, request) and not Receiver.verify(hook["secret"], request)
    actions = [e["action"] for e in app_client.get("/api/v1/audit", params={"action": "webhook."}).json()["items"]]
    assert actions.count("webhook.rotate_secret") == 2


def test_changes_disabling_deleting_and_the_audit_log(app_client: TestClient, services: Services,
                                                      receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url + "?token=s3cr3t")
    r = app_client.patch(f"/api/v1/namespaces/team/webhooks/{hook['id']}",
                         json={"enabled": False, "events": ["image.pushed", "image.deleted"], "description": "x"})
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["events"] == ["image.pushed", "image.deleted"]
    push_image(app_client, "team/app", "1.0")
    assert run_jobs(services) == [] and receiver.requests == []  # disabled: no delivery

    assert app_client.patch(f"/api/v1/namespaces/team/webhooks/{hook['id']}", json={"enabled": True}).status_code == 200
    push_image(app_client, "team/app", "2.0")
    services.events.dispatch_all()  # a delivery is queued…
    assert app_client.delete(f"/api/v1/namespaces/team/webhooks/{hook['id']}").status_code == 204
    assert run_jobs(services) == [{"skipped": "the delivery is gone (its webhook was deleted)"}]  # …and dropped
    assert receiver.requests == []
    assert app_client.get(f"/api/v1/namespaces/team/webhooks/{hook['id']}").status_code == 404

    audit = app_client.get("/api/v1/audit", params={"action": "webhook."}).json()["items"]
    assert [e["action"] for e in audit] == ["webhook.delete", "webhook.update", "webhook.update", "webhook.create"]
    assert all(e["target"] == "team" and e["detail"]["webhook"] == hook["id"] for e in audit)
    text = str(audit)
    assert "s3cr3t" not in text and hook["secret"] not in text  # no query string, no secret


@pytest.fixture
def people(app_client: TestClient, settings: Settings, services: Services) -> Iterator[dict[str, TestClient]]:
    """Members of the private namespace `team` (owner, developer, guest) and an outsider."""
    namespace(app_client, "team")
    clients: dict[str, TestClient] = {}
    for name, role in (("olive", "owner"), ("dev", "developer"), ("gus", "guest"), ("out", None)):
        services.users.create(name, hashed(f"{name}-password"))
        if role:
            assert app_client.put(f"/api/v1/namespaces/team/members/{name}", json={"role": role}).status_code == 200
        clients[name] = TestClient(create_app(settings, services), base_url="http://registry.test",
                                   headers=basic(name, f"{name}-password"))
    yield clients
    for client in clients.values():
        client.close()


def test_only_owners_and_administrators_manage_webhooks(app_client: TestClient, people: dict[str, TestClient],
                                                        receiver: Receiver) -> None:
    hook = create(people["olive"], "team", receiver.url)  # an owner
    base = "/api/v1/namespaces/team/webhooks"
    calls = [("get", base, None), ("post", base, {"url": receiver.url, "events": ["image.pushed"]}),
             ("get", f"{base}/{hook['id']}", None), ("patch", f"{base}/{hook['id']}", {"enabled": False}),
             ("post", f"{base}/{hook['id']}/ping", {}), ("get", f"{base}/{hook['id']}/deliveries", None),
             ("post", f"{base}/{hook['id']}/rotate-secret", {}), ("delete", f"{base}/{hook['id']}", None)]
    for who, status in (("dev", 403), ("gus", 403), ("out", 404)):
        for method, path, body in calls:
            kwargs = {"json": body} if body is not None else {}
            r = getattr(people[who], method)(path, **kwargs)
            assert r.status_code == status, (who, method, path, r.text)
    assert app_client.get(base).json()["items"][0]["id"] == hook["id"]  # administrators see them
    assert people["olive"].get("/api/v1/namespaces/nope/webhooks").status_code == 404
    assert people["olive"].get(f"{base}/999999").status_code == 404
    assert people["olive"].get(f"{base}/abc").status_code == 404


def test_deliveries_come_newest_first_in_pages(app_client: TestClient, services: Services, receiver: Receiver) -> None:
    namespace(app_client, "team")
    hook = create(app_client, "team", receiver.url)
    for tag in ("1", "2", "3"):
        push_image(app_client, "team/app", tag)
    run_jobs(services)
    r = app_client.get(f"/api/v1/namespaces/team/webhooks/{hook['id']}/deliveries", params={"limit": 2})
    page = r.json()
    assert [d["status"] for d in page["items"]] == ["succeeded", "succeeded"] and page["next"]
    rest = deliveries(app_client, "team", hook["id"], before=page["next"])
    tags = [json_tag(d) for d in page["items"] + rest]
    assert tags == ["3", "2", "1"]


def json_tag(delivery: dict[str, Any]) -> str:
    import json

    return str(json.loads(delivery["body"])["data"]["tag"])
