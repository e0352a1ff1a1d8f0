"""Token authentication: the 401 challenge, the token endpoint (GET with Basic, POST password and
refresh_token grants), scopes enforced per repository, and every way a credential can be bad."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from dockyard.auth.passwords import hash_password
from dockyard.config import Settings
from tests.conftest import ADMIN, basic
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    assert_error,
    no_server_errors,
    push_blob,
    push_image,
    raw_request,
    sha256,
    snapshot,
)

CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def challenge(response: Any) -> dict[str, str]:
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer "), header
    return dict(CHALLENGE.findall(header))


def token_for(client: TestClient, scopes: list[str], user: tuple[str, str] = ADMIN) -> str:
    r = client.get("/auth/token", params={"service": "dockyard", "scope": scopes}, headers=basic(*user))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0
    return str(body["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_anonymous_gets_a_challenge(anon_client: TestClient) -> None:
    r = anon_client.get("/v2/")
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r) == {"realm": "http://registry.test/auth/token", "service": "dockyard"}
    r = anon_client.get("/v2/lib/app/tags/list")
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r) == {"realm": "http://registry.test/auth/token", "service": "dockyard",
                            "scope": "repository:lib/app:pull"}
    r = anon_client.post("/v2/lib/app/blobs/uploads/")
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r)["scope"] == "repository:lib/app:pull,push"
    r = anon_client.delete(f"/v2/lib/app/manifests/{sha256(b'x')}")
    assert challenge(r)["scope"] == "repository:lib/app:delete"
    r = anon_client.get("/v2/_catalog")
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r)["scope"] == "registry:catalog:*"


def test_anonymous_writes_nothing(anon_client: TestClient, app_client: TestClient, settings: Settings) -> None:
    digest = sha256(b"data")
    assert_error(anon_client.post("/v2/anon/blobs/uploads/", params={"digest": digest}, content=b"data"), 401, "UNAUTHORIZED")
    assert_error(anon_client.post("/v2/anon/blobs/uploads/"), 401, "UNAUTHORIZED")
    assert_error(anon_client.put("/v2/anon/manifests/v1", content=b"{}"), 401, "UNAUTHORIZED")
    assert snapshot(app_client, settings) == (set(), [])


def test_get_token_with_basic_and_use_it(anon_client: TestClient) -> None:
    token = token_for(anon_client, ["repository:lib/app:pull,push"])
    c = claims(token)
    assert c["sub"] == "admin" and c["aud"] == "dockyard"
    assert c["access"] == [{"type": "repository", "name": "lib/app", "actions": ["pull", "push"]}]
    assert anon_client.get("/v2/", headers=bearer(token)).status_code == 200
    digest = sha256(b"layer")
    r = anon_client.post("/v2/lib/app/blobs/uploads/", params={"digest": digest}, content=b"layer", headers=bearer(token))
    assert r.status_code == 201
    assert anon_client.get(f"/v2/lib/app/blobs/{digest}", headers=bearer(token)).content == b"layer"
    # push does not include delete
    r = anon_client.delete(f"/v2/lib/app/blobs/{digest}", headers=bearer(token))
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r)["error"] == "insufficient_scope"
    assert challenge(r)["scope"] == "repository:lib/app:delete"


def test_token_for_repository_a_is_refused_on_b(anon_client: TestClient, app_client: TestClient, settings: Settings) -> None:
    push_image(app_client, "repo/b", "v1")
    before = snapshot(app_client, settings)
    token = token_for(anon_client, ["repository:repo/a:pull,push,delete"])
    for method, url in (("GET", "/v2/repo/b/tags/list"), ("GET", "/v2/repo/b/manifests/v1"),
                        ("POST", "/v2/repo/b/blobs/uploads/"), ("DELETE", "/v2/repo/b/manifests/v1"),
                        ("PUT", "/v2/repo/b/manifests/v2"), ("GET", "/v2/_catalog")):
        r = anon_client.request(method, url, headers=bearer(token), content=b"{}" if method == "PUT" else None)
        assert_error(r, 401, "UNAUTHORIZED")
        ch = challenge(r)
        assert ch["error"] == "insufficient_scope"
        assert ch["realm"] == "http://registry.test/auth/token"
    assert snapshot(app_client, settings) == before
    # a pull-only token for b may read but not write
    token = token_for(anon_client, ["repository:repo/b:pull"])
    assert anon_client.get("/v2/repo/b/tags/list", headers=bearer(token)).json()["tags"] == ["v1"]
    assert_error(anon_client.post("/v2/repo/b/blobs/uploads/", headers=bearer(token)), 401, "UNAUTHORIZED")
    assert snapshot(app_client, settings) == before


def test_several_scopes_and_catalog(anon_client: TestClient, app_client: TestClient) -> None:
    push_blob(app_client, "one", b"1")
    push_blob(app_client, "two", b"2")
    r = anon_client.get("/auth/token", params=[("service", "dockyard"), ("scope", "repository:one:pull"),
                                               ("scope", "repository:two:pull registry:catalog:*")],
                        headers=basic(*ADMIN))
    token = r.json()["token"]
    assert len(claims(token)["access"]) == 3
    assert anon_client.get("/v2/one/blobs/" + sha256(b"1"), headers=bearer(token)).status_code == 200
    assert anon_client.get("/v2/two/blobs/" + sha256(b"2"), headers=bearer(token)).status_code == 200
    assert anon_client.get("/v2/_catalog", headers=bearer(token)).json()["repositories"] == ["one", "two"]


def test_anonymous_token_grants_nothing(anon_client: TestClient, app_client: TestClient) -> None:
    push_image(app_client, "public", "v1")
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": "repository:public:pull"})
    assert r.status_code == 200
    token = r.json()["token"]
    assert claims(token)["access"] == []
    assert "refresh_token" not in r.json()
    r = anon_client.get("/v2/public/tags/list", headers=bearer(token))
    assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r)["error"] == "insufficient_scope"


def test_post_password_grant_and_refresh(anon_client: TestClient) -> None:
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1],
                                              "service": "dockyard", "client_id": "test", "scope": "repository:x:pull,push"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] and body["refresh_token"]
    assert claims(body["access_token"])["access"] == [{"type": "repository", "name": "x", "actions": ["pull", "push"]}]
    assert anon_client.post("/v2/x/blobs/uploads/", headers=bearer(body["access_token"])).status_code == 202
    # the refresh token is not an access token
    assert_error(anon_client.get("/v2/", headers=bearer(body["refresh_token"])), 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                              "service": "dockyard", "scope": "repository:y:pull"})
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    assert claims(fresh)["access"] == [{"type": "repository", "name": "y", "actions": ["pull"]}]
    assert anon_client.get("/v2/y/tags/list", headers=bearer(fresh)).status_code == 404  # allowed, unknown
    # and the refresh token as a Bearer credential on GET (Docker's identity token)
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": "repository:z:pull"},
                        headers=bearer(body["refresh_token"]))
    assert r.status_code == 200


def test_post_refused(anon_client: TestClient) -> None:
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": ADMIN[0], "password": "wrong"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": "nobody", "password": "x"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "garbage"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token"})
    assert_error(r, 401, "UNAUTHORIZED")
    access = token_for(anon_client, ["repository:x:pull"])
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": access})
    assert_error(r, 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    form = "application/x-www-form-urlencoded"
    for content, ctype in ((b"\xff\x00garbage", "multipart/form-data"), (b"\xff\xfe=1", form),
                           (b'{"grant_type": "password"}', "application/json"), (b"scope=" + b"x" * 70000, form),
                           (b"&".join([b"scope=a"] * 100), form), (b"", form)):
        r = anon_client.post("/auth/token", content=content, headers={"Content-Type": ctype})
        assert r.status_code == 400, (content[:20], r.text)


def test_wrong_password(anon_client: TestClient, settings: Settings, app_client: TestClient) -> None:
    bad = basic(ADMIN[0], "not-the-password")
    r = anon_client.get("/auth/token", params={"scope": "repository:x:pull"}, headers=bad)
    assert_error(r, 401, "UNAUTHORIZED")
    assert "token" not in r.json()
    for method, url in (("GET", "/v2/"), ("POST", "/v2/x/blobs/uploads/"), ("GET", "/v2/x/tags/list")):
        r = anon_client.request(method, url, headers=bad)
        assert_error(r, 401, "UNAUTHORIZED")
        assert challenge(r)["realm"] == "http://registry.test/auth/token"
    assert_error(anon_client.get("/v2/", headers=basic("nobody", "x")), 401, "UNAUTHORIZED")
    assert snapshot(app_client, settings) == (set(), [])


def test_disabled_user_is_refused(anon_client: TestClient, services: Any, settings: Settings, app_client: TestClient) -> None:
    services.users.create("carol", hash_password("carol-pw"))
    carol = ("carol", "carol-pw")
    assert anon_client.get("/v2/", headers=basic(*carol)).status_code == 200
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": "carol", "password": "carol-pw"})
    refresh = r.json()["refresh_token"]
    services.users.set_disabled("carol", True)
    assert_error(anon_client.get("/v2/", headers=basic(*carol)), 401, "UNAUTHORIZED")
    assert_error(anon_client.post("/v2/c/blobs/uploads/", headers=basic(*carol)), 401, "UNAUTHORIZED")
    assert_error(anon_client.get("/auth/token", params={"scope": "repository:c:pull"}, headers=basic(*carol)),
                 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "password", "username": "carol", "password": "carol-pw"})
    assert_error(r, 401, "UNAUTHORIZED")
    r = anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert_error(r, 401, "UNAUTHORIZED")
    assert_error(anon_client.get("/auth/token", headers=bearer(refresh)), 401, "UNAUTHORIZED")
    assert snapshot(app_client, settings) == (set(), [])


def _sign(key: Any, **overrides: Any) -> str:
    now = int(time.time())
    payload = {"iss": "dockyard", "sub": "admin", "aud": "dockyard", "iat": now, "nbf": now - 5, "exp": now + 300,
               "jti": "x", "access": [{"type": "repository", "name": "x", "actions": ["pull", "push"]}], **overrides}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="ES256")


@pytest.mark.parametrize("case", ["forged", "expired", "wrong audience", "wrong issuer", "no exp", "hs256",
                                  "none alg", "garbage", "truncated", "empty", "unicode"])
def test_bad_tokens(anon_client: TestClient, services: Any, settings: Settings, app_client: TestClient, case: str) -> None:
    key = services.auth.tokens._key
    good = _sign(key)
    assert anon_client.post("/v2/x/blobs/uploads/", headers=bearer(good)).status_code == 202
    before = snapshot(app_client, settings)
    tokens = {
        "forged": _sign(ec.generate_private_key(ec.SECP256R1())),
        "expired": _sign(key, iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600, exp=int(time.time()) - 600),
        "wrong audience": _sign(key, aud="another-registry"),
        "wrong issuer": _sign(key, iss="someone-else"),
        "no exp": _sign(key, exp=None),
        "hs256": jwt.encode({"sub": "admin", "aud": "dockyard", "iss": "dockyard", "exp": int(time.time()) + 60,
                             "iat": int(time.time())}, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256"),
        "none alg": base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=") + "."
                    + good.split(".")[1] + ".",
        "garbage": "not.a.token",
        "truncated": good[:-10],
        "empty": "",
        "unicode": "\u00e9t\u00e9",
    }
    header = f"Bearer {tokens[case]}".encode("utf-8")
    for method, path in (("GET", b"/v2/"), ("POST", b"/v2/x/blobs/uploads/"), ("GET", b"/v2/x/tags/list")):
        r = raw_request(anon_client, method, path, [(b"authorization", header)], with_auth=False)
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith('Bearer realm="http://registry.test/auth/token"')
        if case not in ("empty",):
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert snapshot(app_client, settings) == before


# -- refresh tokens end with their credential (issue 8, item 2) -------------------------------------
def _refresh_token(client: TestClient, user: str, password: str) -> str:
    r = client.post("/auth/token", data={"grant_type": "password", "username": user, "password": password,
                                         "scope": "repository:team/app:pull"})
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def _refreshes(client: TestClient, refresh: str) -> bool:
    """Whether the refresh token still mints tokens, by the POST grant and as Docker's identity token."""
    by_post = client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                               "scope": "repository:team/app:pull"})
    by_get = client.get("/auth/token", params={"scope": "repository:team/app:pull"}, headers=bearer(refresh))
    assert by_post.status_code == by_get.status_code and by_post.status_code in (200, 401), (by_post.text, by_get.text)
    return by_post.status_code == 200


def test_refresh_tokens_end_with_their_credential(anon_client: TestClient, app_client: TestClient, services: Any) -> None:
    api, admin = "/api/v1", basic(*ADMIN)
    c = anon_client
    assert c.post(f"{api}/users", json={"username": "alice", "password": "alice-password"}, headers=admin).status_code == 201
    alice = basic("alice", "alice-password")
    assert c.post(f"{api}/namespaces", json={"name": "team"}, headers=alice).status_code == 201
    # the account password changes
    refresh = _refresh_token(c, "alice", "alice-password")
    assert _refreshes(c, refresh)
    assert c.patch(f"{api}/users/alice", json={"password": "alice-password-2"}, headers=admin).status_code == 200
    assert not _refreshes(c, refresh)
    alice = basic("alice", "alice-password-2")
    refresh = _refresh_token(c, "alice", "alice-password-2")
    assert _refreshes(c, refresh)
    # the fixed registry password is set (a user's refresh tokens end with either password)
    assert c.put(f"{api}/user/registry-password", json={"password": "registry-pw-1"}, headers=alice).status_code == 204
    assert not _refreshes(c, refresh)
    refresh = _refresh_token(c, "alice", "registry-pw-1")
    assert c.put(f"{api}/user/registry-password", json={"password": "registry-pw-2"}, headers=alice).status_code == 204
    assert not _refreshes(c, refresh)
    # a robot's secret is rotated
    perms = {"name": "ci", "permissions": [{"repositories": "*", "actions": ["pull"]}]}
    robot = c.post(f"{api}/namespaces/team/robots", json=perms, headers=alice).json()
    refresh = _refresh_token(c, robot["username"], robot["secret"])
    assert _refreshes(c, refresh)
    r = c.post(f"{api}/namespaces/team/robots/ci/rotate", json={}, headers=alice)
    assert r.status_code == 200, r.text
    assert not _refreshes(c, refresh)
    # a robot deleted and created again under the same name is another credential
    refresh = _refresh_token(c, robot["username"], r.json()["secret"])
    assert c.delete(f"{api}/namespaces/team/robots/ci", headers=alice).status_code == 204
    again = c.post(f"{api}/namespaces/team/robots", json=perms, headers=alice).json()
    assert again["username"] == robot["username"]
    assert not _refreshes(c, refresh)
    assert _refreshes(c, _refresh_token(c, again["username"], again["secret"]))
    # a temporary password is revoked
    temp = c.post(f"{api}/user/temp-passwords", json={}, headers=alice).json()
    refresh = _refresh_token(c, "alice", temp["password"])
    assert _refreshes(c, refresh)
    assert c.delete(f"{api}/user/temp-passwords/{temp['id']}", headers=alice).status_code == 204
    assert not _refreshes(c, refresh)
    # a refresh token from before tokens were bound to a credential (no `cred`) is refused
    unbound = services.auth.tokens.issue_refresh("alice", "x")
    claims_ = claims(unbound)
    del claims_["cred"]
    assert not _refreshes(c, jwt.encode(claims_, services.auth.tokens._key, algorithm="ES256"))
