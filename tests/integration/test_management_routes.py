"""The HTTP edge of /api/v1 against cross-site requests (issue 8, item 3): a web page can make a
browser POST a text/plain or form body anywhere without a CORS preflight, so every request that
changes something must be application/json (415 otherwise), and a 401 never carries a Basic
challenge (browsers would ask for the password, cache it, and send it with other sites' requests).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ADMIN, basic
from tests.integration.helpers import no_server_errors  # noqa: F401  (autouse)

API = "/api/v1"
NEW_USER = json.dumps({"username": "mallory", "password": "a-long-password", "is_admin": True}).encode()


def _err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"], r.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/jsonp", "application/json-patch+json"])
def test_bodies_must_be_json(app_client: TestClient, content_type: str | None) -> None:
    c = app_client
    headers = {"Content-Type": content_type} if content_type else {}
    _err(c.post(f"{API}/users", content=NEW_USER, headers=headers), 415, "unsupported_media_type")
    _err(c.patch(f"{API}/users/admin", content=b'{"password": "another-password"}', headers=headers),
         415, "unsupported_media_type")
    _err(c.put(f"{API}/user/registry-password", content=b'{"password": "registry-pw-1"}', headers=headers),
         415, "unsupported_media_type")
    assert [u["username"] for u in c.get(f"{API}/users").json()["items"]] == ["admin"]
    assert c.get(f"{API}/audit").json()["items"] == []


def test_json_with_a_charset_is_json(app_client: TestClient) -> None:
    r = app_client.post(f"{API}/users", content=NEW_USER, headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert r.status_code == 201, r.text


def test_a_post_without_a_body(app_client: TestClient) -> None:
    c = app_client
    assert c.post(f"{API}/namespaces", json={"name": "team"}).status_code == 201
    r = c.post(f"{API}/namespaces/team/robots", json={"name": "ci", "permissions": []})
    assert r.status_code == 201, r.text
    rotate = f"{API}/namespaces/team/robots/ci/rotate"
    _err(c.post(rotate), 415, "unsupported_media_type")
    _err(c.post(rotate, content=b"", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    _err(c.post(rotate, content=b"{}", headers={"Content-Type": "application/x-www-form-urlencoded"}),
         415, "unsupported_media_type")
    assert c.get(f"{API}/namespaces/team/robots/ci").json()["rotated_at"] is None
    for body in (b"", b"{}", b" {} "):
        r = c.post(rotate, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["secret"], r.text
    _err(c.post(rotate, json={"secret": "mine"}), 422, "invalid")
    _err(c.post(rotate, content=b"[]", headers={"Content-Type": "application/json"}), 422, "invalid")
    # reads and deletes have no body to check
    assert c.get(f"{API}/namespaces/team/robots/ci", headers={"Content-Type": "text/plain"}).status_code == 200
    assert c.delete(f"{API}/namespaces/team/robots/ci").status_code == 204


@pytest.mark.parametrize("headers", [{}, basic(ADMIN[0], "wrong-password"), {"Authorization": "Bearer x.y.z"},
                                     {"Authorization": "Digest x"}])
def test_no_basic_challenge(anon_client: TestClient, headers: dict[str, str]) -> None:
    r = anon_client.get(f"{API}/user", headers=headers)
    _err(r, 401, "unauthenticated")
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "basic" not in challenge.lower()
    assert 'scope="management"' in challenge
