"""Only the account password unlocks changes through the management API: a token obtained with
the fixed registry password (what `docker login` stores) may read, not change."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import ADMIN, basic


def _token(client: TestClient, user: str, password: str) -> str:
    r = client.get("/auth/token", params={"service": "dockyard"}, headers=basic(user, password))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_registry_password_token_is_read_only(anon_client: TestClient) -> None:
    r = anon_client.put("/api/v1/user/registry-password", json={"password": "registry-pw-123"}, headers=basic(*ADMIN))
    assert r.status_code in (200, 204), r.text
    docker_login_token = _token(anon_client, ADMIN[0], "registry-pw-123")
    bearer = {"Authorization": f"Bearer {docker_login_token}"}
    assert anon_client.get("/api/v1/namespaces", headers=bearer).status_code == 200
    r = anon_client.post("/api/v1/namespaces", json={"name": "sneaky"}, headers=bearer)
    assert r.status_code == 403, r.text
    assert anon_client.get("/api/v1/namespaces/sneaky", headers=basic(*ADMIN)).status_code == 404

    account_token = _token(anon_client, *ADMIN)
    r = anon_client.post("/api/v1/namespaces", json={"name": "proper"}, headers={"Authorization": f"Bearer {account_token}"})
    assert r.status_code == 201, r.text
    # and the registry password works for docker login, of course
    assert anon_client.get("/v2/", headers=basic(ADMIN[0], "registry-pw-123")).status_code == 200
