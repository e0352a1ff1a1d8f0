"""Repeated failed logins are slowed down, on the token endpoint and on Basic /v2 alike."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import ADMIN, basic


def test_token_endpoint_throttles_guessing(anon_client: TestClient) -> None:
    codes = [anon_client.get("/auth/token", params={"service": "dockyard"}, headers=basic("admin", f"wrong{i}")).status_code
             for i in range(7)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    r = anon_client.get("/auth/token", params={"service": "dockyard"}, headers=basic(*ADMIN))
    assert r.status_code == 429  # even the right password waits: guessing must not learn anything
    assert int(r.headers["retry-after"]) > 0
    # another account is not affected
    assert anon_client.get("/auth/token", params={"service": "dockyard"}, headers=basic("nobody", "x")).status_code == 401


def test_basic_on_v2_throttles_guessing(anon_client: TestClient) -> None:
    for i in range(5):
        assert anon_client.get("/v2/", headers=basic("admin", f"bad{i}")).status_code == 401
    r = anon_client.get("/v2/", headers=basic("admin", "bad"))
    assert r.status_code == 429
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert "retry-after" in r.headers
