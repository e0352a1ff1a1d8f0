"""Management tokens and registry tokens are kept apart (issue 8, items 1 and 6).

- /api/v1 refuses registry tokens, whatever they grant and whatever credential they were issued
  for: an administrator's leaked pull token creates nobody.
- A management token is asked for explicitly (`scope=management` at /auth/token), alone, with
  credentials (never a refresh token); it is short-lived and comes without a refresh token, and /v2
  refuses it.
- Only the account password unlocks changes; the fixed registry password and unlimited temporary
  passwords read; limited credentials (robots, temporary passwords limited to some repositories or
  actions) see GET /user and nothing else.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from tests.conftest import ADMIN, basic
from tests.integration.helpers import no_server_errors  # noqa: F401  (autouse)

API = "/api/v1"
PASSWORD = "a-long-password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(client: TestClient, user: str, password: str, scopes: list[str] | None = None, **params: str) -> str:
    r = client.get("/auth/token", params={"service": "dockyard", "scope": scopes or [], **params},
                   headers=basic(user, password))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _management(client: TestClient, user: str, password: str) -> str:
    return _token(client, user, password, ["management"])


def _err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


@pytest.mark.parametrize("scopes", [[], ["repository:team/app:pull"], ["repository:team/app:*", "registry:catalog:*"]])
def test_registry_tokens_are_refused_by_the_management_api(anon_client: TestClient, scopes: list[str]) -> None:
    # An administrator's token from the account password: before, a full management credential.
    leaked = _token(anon_client, *ADMIN, scopes)
    r = anon_client.post(f"{API}/users", json={"username": "mallory", "password": PASSWORD, "is_admin": True},
                         headers=bearer(leaked))
    _err(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer ")
    assert "scope=management" in r.json()["error"]["message"]
    _err(anon_client.get(f"{API}/user", headers=bearer(leaked)), 401, "unauthenticated")
    users = anon_client.get(f"{API}/users", headers=basic(*ADMIN)).json()["items"]
    assert [u["username"] for u in users] == ["admin"]
    # and the refresh token that comes with a registry token is no management credential either
    r = anon_client.get("/auth/token", params={"service": "dockyard", "offline_token": "true"}, headers=basic(*ADMIN))
    _err(anon_client.get(f"{API}/user", headers=bearer(r.json()["refresh_token"])), 401, "unauthenticated")


def test_a_management_token_is_asked_for_explicitly(anon_client: TestClient) -> None:
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": "management", "offline_token": "true"},
                        headers=basic(*ADMIN))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"] and "refresh_token" not in body
    assert 0 < body["expires_in"] <= 300
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["aud"] == "dockyard:management" and "access" not in claims
    assert claims["exp"] - claims["iat"] <= 300
    t = body["token"]
    r = anon_client.post(f"{API}/users", json={"username": "alice", "password": PASSWORD}, headers=bearer(t))
    assert r.status_code == 201, r.text
    # /v2 refuses it: it is no registry token
    assert anon_client.get("/v2/", headers=bearer(t)).status_code == 401
    assert anon_client.get("/v2/_catalog", headers=bearer(t)).status_code == 401
    # alone, and with credentials
    r = anon_client.get("/auth/token", params={"scope": ["management", "repository:x:pull"]}, headers=basic(*ADMIN))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert anon_client.get("/auth/token", params={"scope": "management"}).status_code == 401
    # the OAuth2 password grant too (containerd-style clients), without a refresh token
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD,
                                              "scope": "management"})
    assert r.status_code == 200 and "refresh_token" not in r.json()
    assert anon_client.get(f"{API}/user", headers=bearer(r.json()["token"])).json()["username"] == "alice"
    # never from a refresh token (it lives for weeks)
    refresh = anon_client.post("/auth/token", data={"grant_type": "password", "username": "alice",
                                                    "password": PASSWORD}).json()["refresh_token"]
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                              "scope": "management"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = anon_client.get("/auth/token", params={"scope": "management"}, headers=bearer(refresh))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_a_management_token_ends_with_its_password(anon_client: TestClient) -> None:
    admin = basic(*ADMIN)
    anon_client.post(f"{API}/users", json={"username": "alice", "password": PASSWORD}, headers=admin)
    t = _management(anon_client, "alice", PASSWORD)
    assert anon_client.get(f"{API}/user", headers=bearer(t)).status_code == 200
    assert anon_client.patch(f"{API}/users/alice", json={"password": "another-password"}, headers=admin).status_code == 200
    _err(anon_client.get(f"{API}/user", headers=bearer(t)), 401, "unauthenticated")


def test_registry_password_token_is_read_only(anon_client: TestClient) -> None:
    r = anon_client.put(f"{API}/user/registry-password", json={"password": "registry-pw-123"}, headers=basic(*ADMIN))
    assert r.status_code in (200, 204), r.text
    bearer_ = bearer(_management(anon_client, ADMIN[0], "registry-pw-123"))
    assert anon_client.get(f"{API}/namespaces", headers=bearer_).status_code == 200
    _err(anon_client.post(f"{API}/namespaces", json={"name": "sneaky"}, headers=bearer_), 403, "forbidden")
    assert anon_client.get(f"{API}/namespaces/sneaky", headers=basic(*ADMIN)).status_code == 404

    account_token = _management(anon_client, *ADMIN)
    r = anon_client.post(f"{API}/namespaces", json={"name": "proper"}, headers=bearer(account_token))
    assert r.status_code == 201, r.text
    # and the registry password works for docker login, of course
    assert anon_client.get("/v2/", headers=basic(ADMIN[0], "registry-pw-123")).status_code == 200


# Every read of the API but GET /user: none is for limited credentials.
READS = ["/namespaces", "/namespaces/team", "/namespaces/team/members", "/namespaces/team/robots",
         "/namespaces/team/robots/ci", "/repositories", "/repositories/team/app", "/repositories/team/app/tags",
         "/audit", "/users", "/user/temp-passwords"]


def test_limited_credentials_only_learn_who_they_are(app_client: TestClient) -> None:
    c = app_client
    alice = basic("alice", PASSWORD)
    assert c.post(f"{API}/users", json={"username": "alice", "password": PASSWORD}).status_code == 201
    assert c.post(f"{API}/namespaces", json={"name": "team"}, headers=alice).status_code == 201
    assert c.post(f"{API}/repositories", json={"name": "team/app"}, headers=alice).status_code == 201
    robot = c.post(f"{API}/namespaces/team/robots", headers=alice, json={
        "name": "ci", "permissions": [{"repositories": "app", "actions": ["pull"]}]}).json()
    limited = {}
    for name, body in {"pull only": {"actions": ["pull"]}, "team/app only": {"repositories": ["team/app"]},
                       "unlimited": {}}.items():
        temp = c.post(f"{API}/user/temp-passwords", json=body, headers=alice).json()
        limited[name] = ("alice", temp["password"])
    limited["robot"] = (robot["username"], robot["secret"])
    for name, credentials in limited.items():
        t = bearer(_management(c, *credentials))
        me = c.get(f"{API}/user", headers=t)
        assert me.status_code == 200 and me.json()["read_only"] is True, (name, me.text)
        if name == "unlimited":  # reads as its user (its writes are refused: test_management_api)
            for path in ("/namespaces/team/members", "/audit", "/repositories/team/app/tags"):
                assert c.get(API + path, headers=t).status_code == 200, (name, path)
            continue
        for path in READS:
            _err(c.get(API + path, headers=t), 403, "forbidden")
        _err(c.post(f"{API}/namespaces", json={"name": "x"}, headers=t), 403, "forbidden")
        # the registry still works with them, of course
        r = c.get("/auth/token", params={"scope": "repository:team/app:pull"}, headers=basic(*credentials))
        assert r.status_code == 200 and jwt.decode(r.json()["token"], options={"verify_signature": False})["access"]
