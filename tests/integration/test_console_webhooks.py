"""A namespace's webhooks in the web console (web/views/webhooks.py): the list, the create form
(the secret shown once), enable / disable, rotate, delete, ping, a webhook's deliveries with their
attempts and redelivery; who may see them; the Chinese pages. On SQLite and PostgreSQL.

Deliveries go to a real receiver on 127.0.0.1 (tests/webhook_receiver.py; `outbound.allowed_networks`
allows 127.0.0.0/8). No job worker runs: the tests run the `webhook.deliver` handler themselves
(tests/integration/test_webhooks.py's `run_jobs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.config import Settings, load_settings
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    PASSWORD,
    add_user,
    app,
    attr,
    console,
    elements,
    flashes,
    location,
    logged_in,
    make_namespace,
    post,
    refusal,
    registry,
    set_member,
    texts,
)
from tests.integration.helpers import no_server_errors  # noqa: F401  (an autouse fixture)
from tests.integration.test_webhooks import run_jobs
from tests.webhook_receiver import Receiver

HOOKS = "/console/namespaces/team/webhooks"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Without a job worker (the tests run the deliveries), with loopback receivers allowed."""
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False},
                         outbound={"allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
def bob(app: Starlette, console: TestClient, services: Any) -> TestClient:
    add_user(services)
    return logged_in(app, "bob", PASSWORD)


def create_hook(console: TestClient, url: str, **fields: str) -> tuple[int, str]:
    """Create a webhook through the form; (its id, the secret the answer shows)."""
    r = post(console, HOOKS, url=url, **{"event_image.pushed": "on", "format": "dockyard", **fields})
    assert r.status_code == 200, r.text[:1000]
    [secret] = texts(r.text, "webhook-secret")
    assert secret.startswith("whsec_")
    ids = [int(i) for i in attr(r.text, "webhook-row", "data-id")]
    return max(ids), secret


def deliveries_page(console: TestClient, hook_id: int) -> str:
    page = console.get(f"{HOOKS}/{hook_id}")
    assert page.status_code == 200, page.text[:1000]
    return page.text


# -- the pages ---------------------------------------------------------------------------------------------
def test_create_and_list(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    page = console.get("/console/namespaces/team").text
    assert attr(page, "webhooks-link", "href") == [HOOKS]
    empty = console.get(HOOKS)
    assert empty.status_code == 200 and not elements(empty.text, "webhook-row")
    assert elements(empty.text, "webhook-form")

    r = post(console, HOOKS, url="http://127.0.0.1:9/hook?token=abc", format="dockyard",
             repository="team/app-*", description="deploy staging",
             **{"event_image.pushed": "on", "event_scan.finished": "on"})
    assert r.status_code == 200, refusal(console, r)
    [hook] = services.webhooks.store.list("team")
    assert texts(r.text, "flash-ok") == [f"Webhook {hook.id} created."]
    [secret] = texts(r.text, "webhook-secret")
    assert secret.startswith("whsec_") and elements(r.text, "copy-webhook-secret")

    listed = console.get(HOOKS).text  # the secret is shown once
    assert secret not in listed and not elements(listed, "webhook-secret")
    [row] = elements(listed, "webhook-row")
    assert "http://127.0.0.1:9/hook?token=abc" in row["text"] and "deploy staging" in row["text"]
    assert "team/app-*" in row["text"] and row["attrs"]["data-enabled"] == "true"
    assert texts(listed, "webhook-events") == ["Image pushed, Scan finished"]
    assert texts(listed, "webhook-last") == ["none yet"]
    assert hook.events == ("image.pushed", "scan.finished") and hook.repository == "team/app-*"
    assert hook.format == "dockyard" and hook.description == "deploy staging" and hook.created_by == "admin"

    detail = deliveries_page(console, hook.id)
    assert texts(detail, "webhook-url") == ["http://127.0.0.1:9/hook?token=abc"]
    assert not elements(detail, "delivery-row")


def test_the_form_says_what_is_wrong(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    r = post(console, HOOKS, url="http://127.0.0.1:9/hook", format="dockyard", back=HOOKS)  # no event
    assert location(r) == HOOKS and "events" in refusal(console, r)
    r = post(console, HOOKS, url="http://127.0.0.1:9/hook", format="dockerhub", back=HOOKS,
             **{"event_image.deleted": "on"})
    assert "dockerhub" in refusal(console, r)
    r = post(console, HOOKS, url="http://10.1.2.3/hook", format="dockyard", back=HOOKS, **{"event_image.pushed": "on"})
    assert "url" in refusal(console, r)
    assert services.webhooks.store.list("team") == []
    assert console.get("/console/namespaces/team/webhooks/nope").status_code == 404
    assert console.get("/console/namespaces/team/webhooks/99").status_code == 404
    assert console.get("/console/namespaces/nowhere/webhooks").status_code == 404


def test_ping_a_failed_attempt_and_redelivery(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    with Receiver(fail_first=1) as receiver:
        hook_id, secret = create_hook(console, receiver.url)
        r = post(console, f"{HOOKS}/{hook_id}/ping")
        assert location(r) == f"{HOOKS}/{hook_id}"
        assert flashes(console, r, "ok")[0].startswith("Ping queued")
        page = deliveries_page(console, hook_id)
        [row] = elements(page, "delivery-row")
        assert row["attrs"]["data-status"] == "pending" and row["attrs"]["data-attempts"] == "0"

        run_jobs(services)  # the receiver answers 500
        page = deliveries_page(console, hook_id)
        [row] = elements(page, "delivery-row")
        delivery_id = row["attrs"]["data-id"]
        assert row["attrs"]["data-status"] == "failed" and row["attrs"]["data-attempts"] == "1"
        assert texts(page, "delivery-response")[0].startswith("500")
        assert attr(page, "attempt-row", "data-status") == ["500"]
        assert texts(page, "attempt-error") == ["the receiver answered 500"]
        assert "down for maintenance" in page
        [body] = texts(page, "delivery-body")
        assert json.loads(body)["type"] == "ping" and json.loads(body)["id"] == delivery_id
        assert texts(console.get(HOOKS).text, "webhook-last")[0].startswith("Failed")

        r = post(console, f"{HOOKS}/{hook_id}/deliveries/{delivery_id}/redeliver")
        assert location(r) == f"{HOOKS}/{hook_id}"
        assert flashes(console, r, "ok") == [f"Delivery {delivery_id} queued again."]
        run_jobs(services)
        page = deliveries_page(console, hook_id)
        [row] = elements(page, "delivery-row")
        assert row["attrs"]["data-status"] == "succeeded" and row["attrs"]["data-attempts"] == "2"
        assert attr(page, "attempt-row", "data-status") == ["500", "204"]
        assert len(receiver.requests) == 2 and Receiver.verify(secret, receiver.requests[-1])
        assert texts(console.get(HOOKS).text, "webhook-last")[0].startswith("Succeeded")

        missing = post(console, f"{HOOKS}/{hook_id}/deliveries/msg_nope/redeliver", back=f"{HOOKS}/{hook_id}")
        assert "not found" in refusal(console, missing)


def test_disable_rotate_and_delete(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    hook_id, secret = create_hook(console, "http://127.0.0.1:9/hook")

    r = post(console, f"{HOOKS}/{hook_id}/enable", enabled="false")
    assert location(r) == HOOKS and flashes(console, r, "ok") == [f"Webhook {hook_id} disabled."]
    assert services.webhooks.store.get("team", hook_id).enabled is False
    assert attr(console.get(HOOKS).text, "webhook-row", "data-enabled") == ["false"]
    r = post(console, f"{HOOKS}/{hook_id}/enable", enabled="true", back=f"{HOOKS}/{hook_id}")
    assert location(r) == f"{HOOKS}/{hook_id}"
    assert services.webhooks.store.get("team", hook_id).enabled is True

    r = post(console, f"{HOOKS}/{hook_id}/rotate")
    assert r.status_code == 200
    [new_secret] = texts(r.text, "webhook-secret")
    assert new_secret.startswith("whsec_") and new_secret != secret

    r = post(console, f"{HOOKS}/{hook_id}/delete")
    assert location(r) == HOOKS and flashes(console, r, "ok") == [f"Webhook {hook_id} deleted."]
    assert services.webhooks.store.list("team") == []
    actions = {e.action for e in services.audit.query(limit=100)}
    assert {"webhook.create", "webhook.update", "webhook.rotate_secret", "webhook.delete"} <= actions


@pytest.mark.parametrize("role", ["guest", "developer"])
def test_only_owners_and_admins_see_webhooks(console: TestClient, services: Any, bob: TestClient, role: str) -> None:
    make_namespace(console, "team")
    hook_id, _ = create_hook(console, "http://127.0.0.1:9/hook")
    set_member(console, "team", "bob", role)
    assert not elements(bob.get("/console/namespaces/team").text, "webhooks-link")
    assert bob.get(HOOKS).status_code == 403
    assert bob.get(f"{HOOKS}/{hook_id}").status_code == 403
    assert "owner" in refusal(bob, post(bob, HOOKS, url="http://127.0.0.1:9/x", format="dockyard",
                                        **{"event_image.pushed": "on"}))
    assert "owner" in refusal(bob, post(bob, f"{HOOKS}/{hook_id}/delete"))
    assert "owner" in refusal(bob, post(bob, f"{HOOKS}/{hook_id}/ping"))
    assert [h.id for h in services.webhooks.store.list("team")] == [hook_id]
    assert services.webhooks.store.deliveries(hook_id) == []
    # an owner may
    set_member(console, "team", "bob", "owner")
    assert attr(bob.get("/console/namespaces/team").text, "webhooks-link", "href") == [HOOKS]
    assert attr(bob.get(HOOKS).text, "webhook-row", "data-id") == [str(hook_id)]


def test_strangers_do_not_learn_of_a_private_namespace(console: TestClient, bob: TestClient) -> None:
    make_namespace(console, "team")
    hook_id, _ = create_hook(console, "http://127.0.0.1:9/hook")
    assert bob.get(HOOKS).status_code == 404
    assert bob.get(f"{HOOKS}/{hook_id}").status_code == 404


def test_chinese_webhooks_pages(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    console.cookies.set("dockyard_lang", "zh-CN")
    hook_id, _ = create_hook(console, "http://127.0.0.1:9/hook")
    post(console, f"{HOOKS}/{hook_id}/ping")
    page = console.get(HOOKS).text
    assert "Webhook" in page and "添加" in page and "镜像已推送" in texts(page, "webhook-events")[0]
    detail = deliveries_page(console, hook_id)
    assert "投递记录" in detail and "重新投递" in detail
    assert "等待中" in texts(detail, "delivery-status")[0]
