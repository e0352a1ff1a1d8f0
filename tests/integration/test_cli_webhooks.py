"""`dockyard webhook list|create|deliveries|redeliver` against the real application, in-process
(as tests/integration/test_cli_manage.py drives the other remote commands), with deliveries to a
receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from dockyard.app import Services, create_app
from dockyard.cli import main
from dockyard.config import Settings, load_settings
from tests.conftest import ADMIN, _sqlite_database, basic
from tests.integration.helpers import push_image
from tests.integration.test_cli_manage import Api
from tests.integration.test_webhooks import run_jobs
from tests.webhook_receiver import Receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: these tests are about the command line (the API's own tests run on both)."""
    return load_settings(data_dir=tmp_path / "data", database={"url": _sqlite_database(tmp_path / "dockyard.db")},
                         gc={"interval_seconds": 0}, uploads={"purge_interval_seconds": 0},
                         jobs={"embedded_worker": False}, outbound={"allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
def api(settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKYARD_USER", ADMIN[0])
    monkeypatch.setenv("DOCKYARD_PASSWORD", ADMIN[1])
    with TestClient(create_app(settings, services), base_url="http://registry.test", headers=basic(*ADMIN)) as client:
        yield Api(client, services)


def ok(api: Api, *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), obj={"transport": api}, catch_exceptions=False)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def test_create_list_deliveries_and_redeliver(api: Api, services: Services) -> None:
    assert api.registry.post("/api/v1/namespaces", json={"name": "team"}).status_code == 201
    with Receiver(fail_first=1) as receiver:
        created = ok(api, "webhook", "create", "team", receiver.url, "--event", "image.pushed", "--event",
                     "image.deleted", "--repository", "team/app", "--description", "staging").stdout
        assert created.startswith("created webhook 1 in team\nsigning secret (shown only now): whsec_")
        assert api.calls("POST")[-1][1:] == ("/api/v1/namespaces/team/webhooks", {}, {
            "url": receiver.url, "events": ["image.pushed", "image.deleted"], "repository": "team/app",
            "description": "staging"})
        listed = ok(api, "webhook", "list", "team").stdout.splitlines()
        assert listed[0].split()[:4] == ["ID", "URL", "EVENTS", "FORMAT"]
        assert listed[1].split()[:5] == ["1", receiver.url, "image.pushed,image.deleted", "dockyard", "team/app"]
        assert "secret" not in json.loads(ok(api, "webhook", "list", "team", "--json").stdout)[0]

        push_image(api.registry, "team/app", "1.0")
        run_jobs(services)  # the receiver answers 500 the first time
        rows = ok(api, "webhook", "deliveries", "team", "1").stdout.splitlines()
        delivery_id = rows[1].split()[0]
        assert rows[1].split()[1:5] == ["image.pushed", "pending", "1", "500"]
        assert "the receiver answered 500" in rows[1]

        assert ok(api, "webhook", "redeliver", "team", "1", delivery_id).stdout == f"delivery {delivery_id} queued again\n"
        run_jobs(services)
        [doc] = json.loads(ok(api, "webhook", "deliveries", "team", "1", "--json").stdout)
    assert doc["status"] == "succeeded" and [a["response_status"] for a in doc["attempts"]] == [500, 204]
    assert len(receiver.requests) == 2
