"""The management API under /api/v1, in-process on SQLite and PostgreSQL: every endpoint's happy
path, pagination, the OpenAPI document, and the attacks of issue 3 (each refused with a clear
error, changing nothing)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from dockyard.meta.db import utcnow
from dockyard.meta.tables import robots, temp_passwords
from tests.conftest import basic
from tests.integration.helpers import no_server_errors, push_blob, push_image  # noqa: F401

API = "/api/v1"
PASSWORD = "a-long-password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


def make_user(c: TestClient, name: str, admin: bool = False) -> dict[str, str]:
    r = c.post(f"{API}/users", json={"username": name, "password": PASSWORD, "is_admin": admin})
    assert r.status_code == 201, r.text
    return basic(name, PASSWORD)


def make_ns(c: TestClient, name: str, who: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    r = c.post(f"{API}/namespaces", json={"name": name, **extra}, headers=who or {})
    assert r.status_code == 201, r.text
    return dict(r.json())


def token(c: TestClient, user: str, password: str, scopes: list[str] | None = None) -> str:
    r = c.get("/auth/token", params={"service": "dockyard", "scope": scopes or []}, headers=basic(user, password))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def management_token(c: TestClient, user: str, password: str) -> str:
    return token(c, user, password, ["management"])


def audit_actions(c: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[tuple[str, str]]:
    r = c.get(f"{API}/audit", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return [(e["action"], e["target"]) for e in r.json()["items"]]


# -- the reference -------------------------------------------------------------------------------------
def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_lists_every_route_and_resolves(app_client: TestClient, anon_client: TestClient) -> None:
    r = anon_client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    api_routes = next(route for route in app_client.app.web.routes if getattr(route, "path", "") == "/api/v1")
    served = set()
    for route in api_routes.routes:
        if route.path == "/{rest:path}":
            continue
        path = API + re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", route.path)
        served |= {(path, m.lower()) for m in route.methods if m != "HEAD"}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for wanted in [("/api/v1/namespaces", "post"), ("/api/v1/namespaces/{ns}/members/{username}", "put"),
                   ("/api/v1/repositories/{name}/tags", "get"), ("/api/v1/user/temp-passwords/{id}", "delete"),
                   ("/api/v1/namespaces/{ns}/robots/{name}/rotate", "post"), ("/api/v1/audit", "get"),
                   ("/api/v1/users/{username}", "patch"), ("/api/v1/user/registry-password", "put")]:
        assert wanted in documented, wanted
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for op in ops.values():
            assert op["responses"] and op["summary"]
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == names
    html = anon_client.get(f"{API}/docs")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<script" not in html.text
    for path in doc["paths"]:
        assert path in html.text


# -- namespaces and members ----------------------------------------------------------------------------
def test_namespace_lifecycle(app_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    ns = make_ns(c, "team", alice, description="the team")
    assert ns["role"] == "owner" and ns["public"] is False and ns["auto_create"] is True
    r = c.get(f"{API}/namespaces/team", headers=alice)
    assert r.json()["description"] == "the team"
    assert [m["username"] for m in c.get(f"{API}/namespaces/team/members", headers=alice).json()["items"]] == ["alice"]
    r = c.patch(f"{API}/namespaces/team", json={"public": True, "description": None}, headers=alice)
    assert r.status_code == 200 and r.json()["public"] is True and r.json()["description"] is None
    err(c.post(f"{API}/namespaces", json={"name": "team"}, headers=alice), 409, "conflict")
    me = c.get(f"{API}/user", headers=alice).json()
    assert me == {"username": "alice", "kind": "user", "is_admin": False, "read_only": False,
                  "temp_password_id": None, "namespaces": {"team": "owner"}}
    assert c.delete(f"{API}/namespaces/team", headers=alice).status_code == 204
    err(c.get(f"{API}/namespaces/team", headers=alice), 404, "not_found")
    actions = audit_actions(c)
    assert ("namespace.delete", "team") in actions and ("namespace.update", "team") in actions
    event = c.get(f"{API}/audit", params={"action": "namespace.create"}).json()["items"][0]
    assert event["actor"] == "alice" and event["remote"] == "testclient"


@pytest.mark.parametrize("name", ["Team", "a/b", "..", "-x", "x-", "a..b", "", "a" * 300, "café"])
def test_bad_namespace_names_are_refused(app_client: TestClient, name: str) -> None:
    err(app_client.post(f"{API}/namespaces", json={"name": name}), 422, "invalid")
    assert app_client.get(f"{API}/namespaces").json()["items"] == []


def test_reserved_library_namespace_is_for_admins(app_client: TestClient) -> None:
    alice = make_user(app_client, "alice")
    err(app_client.post(f"{API}/namespaces", json={"name": "library"}, headers=alice), 403, "forbidden")
    make_ns(app_client, "library")


def test_pagination_of_namespaces_users_repositories_and_tags(app_client: TestClient) -> None:
    c = app_client
    for i in range(7):
        make_ns(c, f"ns{i}")
    seen, after = [], None
    while True:
        r = c.get(f"{API}/namespaces", params={"limit": 3, **({"after": after} if after else {})})
        assert r.status_code == 200
        page = r.json()
        seen += [n["name"] for n in page["items"]]
        assert len(page["items"]) <= 3
        after = page["next"]
        if after is None:
            break
    assert seen == [f"ns{i}" for i in range(7)]
    err(c.get(f"{API}/namespaces", params={"limit": 0}), 422, "invalid")
    err(c.get(f"{API}/namespaces", params={"limit": 501}), 422, "invalid")
    err(c.get(f"{API}/namespaces", params={"bogus": 1}), 422, "invalid")
    for i in range(5):
        assert c.post(f"{API}/repositories", json={"name": f"ns0/app{i}"}).status_code == 201
    c.post(f"{API}/repositories", json={"name": "ns1/other"})
    p1 = c.get(f"{API}/repositories", params={"namespace": "ns0", "limit": 2}).json()
    assert [r["name"] for r in p1["items"]] == ["ns0/app0", "ns0/app1"] and p1["next"] == "ns0/app1"
    p2 = c.get(f"{API}/repositories", params={"namespace": "ns0", "limit": 2, "after": p1["next"]}).json()
    assert [r["name"] for r in p2["items"]] == ["ns0/app2", "ns0/app3"]
    p3 = c.get(f"{API}/repositories", params={"namespace": "ns0", "limit": 2, "after": p2["next"]}).json()
    assert [r["name"] for r in p3["items"]] == ["ns0/app4"] and p3["next"] is None
    assert [r["name"] for r in c.get(f"{API}/repositories", params={"q": "oth"}).json()["items"]] == ["ns1/other"]
    for i in range(3):
        make_user(c, f"u{i}")
    p = c.get(f"{API}/users", params={"limit": 2}).json()
    assert [u["username"] for u in p["items"]] == ["admin", "u0"] and p["next"] == "u0"
    assert [u["username"] for u in c.get(f"{API}/users", params={"after": "u0"}).json()["items"]] == ["u1", "u2"]
    for tag in ("a", "b", "c"):
        push_image(c, "ns0/app0", tag)
    t1 = c.get(f"{API}/repositories/ns0/app0/tags", params={"limit": 2}).json()
    assert [t["name"] for t in t1["items"]] == ["a", "b"] and t1["next"] == "b"
    t2 = c.get(f"{API}/repositories/ns0/app0/tags", params={"after": "b"}).json()
    assert [t["name"] for t in t2["items"]] == ["c"] and t2["next"] is None
    a = c.get(f"{API}/audit", params={"limit": 2}).json()
    b = c.get(f"{API}/audit", params={"limit": 2, "before": a["next"]}).json()
    assert a["items"][0]["id"] > a["items"][1]["id"] > b["items"][0]["id"] > b["items"][1]["id"]


def test_members_and_the_last_owner(app_client: TestClient) -> None:
    c = app_client
    alice, bob, carol = make_user(c, "alice"), make_user(c, "bob"), make_user(c, "carol")
    make_ns(c, "team", alice)
    r = c.put(f"{API}/namespaces/team/members/bob", json={"role": "developer"}, headers=alice)
    assert r.status_code == 200 and r.json()["role"] == "developer"
    err(c.put(f"{API}/namespaces/team/members/nobody", json={"role": "guest"}, headers=alice), 404, "not_found")
    err(c.put(f"{API}/namespaces/team/members/carol", json={"role": "king"}, headers=alice), 422, "invalid")
    # a developer cannot manage members
    err(c.put(f"{API}/namespaces/team/members/carol", json={"role": "owner"}, headers=bob), 403, "forbidden")
    # the last owner can neither leave nor be demoted
    err(c.delete(f"{API}/namespaces/team/members/alice", headers=alice), 409, "conflict")
    err(c.put(f"{API}/namespaces/team/members/alice", json={"role": "guest"}, headers=alice), 409, "conflict")
    err(c.delete(f"{API}/namespaces/team/members/alice"), 409, "conflict")  # not even an administrator
    assert c.put(f"{API}/namespaces/team/members/bob", json={"role": "owner"}, headers=alice).status_code == 200
    assert c.delete(f"{API}/namespaces/team/members/alice", headers=bob).status_code == 204
    members = c.get(f"{API}/namespaces/team/members", headers=bob).json()["items"]
    assert [(m["username"], m["role"]) for m in members] == [("bob", "owner")]
    err(c.get(f"{API}/namespaces/team/members", headers=carol), 404, "not_found")  # private, not a member
    err(c.delete(f"{API}/namespaces/team/members/carol", headers=bob), 404, "not_found")
    assert ("member.remove", "team") in audit_actions(c, action="member.")


def test_guest_cannot_create_repositories_or_add_members(app_client: TestClient) -> None:
    c = app_client
    alice, guest = make_user(c, "alice"), make_user(c, "gus")
    make_ns(c, "team", alice)
    c.put(f"{API}/namespaces/team/members/gus", json={"role": "guest"}, headers=alice)
    err(c.post(f"{API}/repositories", json={"name": "team/app"}, headers=guest), 403, "forbidden")
    err(c.put(f"{API}/namespaces/team/members/gus", json={"role": "owner"}, headers=guest), 403, "forbidden")
    err(c.post(f"{API}/namespaces/team/robots", json={"name": "ci", "permissions": []}, headers=guest), 403, "forbidden")
    # nor push-create one through the registry
    t = token(c, "gus", PASSWORD, ["repository:team/app:pull,push"])
    r = c.put("/v2/team/app/manifests/latest", content=b"{}", headers={**bearer(t), "Content-Type": "application/json"})
    assert r.status_code in (401, 403)
    assert c.get(f"{API}/repositories", params={"namespace": "team"}).json()["items"] == []
    assert [(m["username"], m["role"]) for m in c.get(f"{API}/namespaces/team/members").json()["items"]] == [
        ("alice", "owner"), ("gus", "guest")]


def test_cannot_delete_or_change_another_users_namespace(app_client: TestClient, services: Any) -> None:
    c = app_client
    alice, mallory = make_user(c, "alice"), make_user(c, "mallory")
    make_ns(c, "team", alice)
    c.post(f"{API}/repositories", json={"name": "team/app"}, headers=alice)
    push_image(c, "team/app", "v1")
    # The push's audit record comes from its event (meta/events.py): dispatched now, not by the
    # worker's tick in the middle of the comparison below.
    services.events.dispatch_all()
    before = c.get(f"{API}/audit").json()["items"]
    err(c.delete(f"{API}/namespaces/team", headers=mallory), 403, "forbidden")
    err(c.patch(f"{API}/namespaces/team", json={"public": True}, headers=mallory), 403, "forbidden")
    err(c.delete(f"{API}/repositories/team/app", headers=mallory), 403, "forbidden")
    err(c.post(f"{API}/repositories", json={"name": "team/evil"}, headers=mallory), 403, "forbidden")
    err(c.get(f"{API}/namespaces/team", headers=mallory), 404, "not_found")
    err(c.get(f"{API}/repositories/team/app", headers=mallory), 404, "not_found")
    assert c.get(f"{API}/namespaces", headers=mallory).json()["items"] == []
    # nothing changed
    assert c.get(f"{API}/namespaces/team").json()["public"] is False
    assert [r["name"] for r in c.get(f"{API}/repositories").json()["items"]] == ["team/app"]
    assert c.get("/v2/team/app/manifests/v1").status_code == 200
    assert c.get(f"{API}/audit").json()["items"] == before
    # a developer may not delete either
    c.put(f"{API}/namespaces/team/members/mallory", json={"role": "developer"}, headers=alice)
    err(c.delete(f"{API}/namespaces/team", headers=mallory), 403, "forbidden")
    err(c.delete(f"{API}/repositories/team/app", headers=mallory), 403, "forbidden")
    assert c.get(f"{API}/repositories/team/app", headers=mallory).status_code == 200


# -- repositories --------------------------------------------------------------------------------------
def test_repositories_visibility_and_deletion(app_client: TestClient, services: Any) -> None:
    c = app_client
    alice, bob = make_user(c, "alice"), make_user(c, "bob")
    make_ns(c, "team", alice)
    err(c.post(f"{API}/repositories", json={"name": "nons/app"}, headers=alice), 404, "not_found")
    err(c.post(f"{API}/repositories", json={"name": "team/../etc"}, headers=alice), 422, "invalid")
    r = c.post(f"{API}/repositories", json={"name": "team/app", "summary": "s", "visibility": "public"}, headers=alice)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["namespace"] == "team" and body["public"] is True and body["summary"] == "s"
    c.post(f"{API}/repositories", json={"name": "team/secret/deep"}, headers=alice)
    err(c.post(f"{API}/repositories", json={"name": "team/app"}, headers=alice), 409, "conflict")
    # bob sees only the public one
    assert [x["name"] for x in c.get(f"{API}/repositories", headers=bob).json()["items"]] == ["team/app"]
    assert c.get(f"{API}/repositories/team/app", headers=bob).status_code == 200
    err(c.get(f"{API}/repositories/team/secret/deep", headers=bob), 404, "not_found")
    r = c.patch(f"{API}/repositories/team/app", json={"visibility": None, "description": "d"}, headers=alice)
    assert r.status_code == 200 and r.json()["visibility"] is None and r.json()["public"] is False
    assert c.get(f"{API}/repositories", headers=bob).json()["items"] == []
    # deleting removes tags and manifests at once; shared blobs stay for the other repository
    layer = b"a shared layer"
    d1, _ = push_image(c, "team/app", "v1", layer=layer)
    d2, _ = push_image(c, "team/secret/deep", "v1", layer=layer)
    pulled = c.get("/v2/team/app/manifests/v1")
    assert pulled.status_code == 200
    services.activity.flush()
    tags = c.get(f"{API}/repositories/team/app/tags", headers=alice).json()["items"]
    assert [(t["name"], t["digest"], t["pulls"]) for t in tags] == [("v1", d1, 1)]
    assert tags[0]["last_pulled_at"] and tags[0]["updated_at"]
    assert c.delete(f"{API}/repositories/team/app", headers=alice).status_code == 204
    assert c.get("/v2/team/app/manifests/v1").status_code == 404
    assert c.get(f"/v2/team/app/manifests/{d1}").status_code == 404
    err(c.get(f"{API}/repositories/team/app"), 404, "not_found")
    assert c.get("/v2/team/secret/deep/manifests/v1").status_code == 200
    from tests.integration.helpers import sha256
    assert c.get(f"/v2/team/secret/deep/blobs/{sha256(layer)}").content == layer
    # a push recreates the repository (the caches forgot the old one)
    push_image(c, "team/app", "v2")
    assert [t["name"] for t in c.get(f"{API}/repositories/team/app/tags").json()["items"]] == ["v2"]
    assert ("repository.delete", "team/app") in audit_actions(c, action="repository.")


def test_only_owners_make_a_repository_public(app_client: TestClient) -> None:
    c = app_client
    alice, dev = make_user(c, "alice"), make_user(c, "dev")
    make_ns(c, "team", alice)
    c.put(f"{API}/namespaces/team/members/dev", json={"role": "developer"}, headers=alice)
    assert c.post(f"{API}/repositories", json={"name": "team/app", "visibility": "private"}, headers=alice).status_code == 201
    # the owner keeps it private: a developer may change it, but not open it up
    err(c.patch(f"{API}/repositories/team/app", json={"visibility": "public"}, headers=dev), 403, "forbidden")
    err(c.post(f"{API}/repositories", json={"name": "team/new", "visibility": "public"}, headers=dev), 403, "forbidden")
    assert c.patch(f"{API}/repositories/team/app", json={"summary": "s"}, headers=dev).status_code == 200
    assert c.post(f"{API}/repositories", json={"name": "team/other"}, headers=dev).status_code == 201
    # inheriting a public namespace's visibility opens it up too
    c.patch(f"{API}/namespaces/team", json={"public": True}, headers=alice)
    err(c.patch(f"{API}/repositories/team/app", json={"visibility": None}, headers=dev), 403, "forbidden")
    assert c.get(f"{API}/repositories/team/app").json()["public"] is False
    assert c.get(f"{API}/repositories/team/new").status_code == 404
    # owners and administrators may; and a developer may close what is open
    assert c.patch(f"{API}/repositories/team/app", json={"visibility": "public"}, headers=alice).json()["public"] is True
    assert c.patch(f"{API}/repositories/team/app", json={"visibility": "private"}, headers=dev).json()["public"] is False
    assert c.patch(f"{API}/repositories/team/app", json={"visibility": None}).json()["public"] is True


def test_deleting_a_namespace_removes_its_repositories_and_robots(app_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    make_ns(c, "team", alice)
    c.post(f"{API}/namespaces/team/robots", json={"name": "ci", "permissions": [{"repositories": "*", "actions": ["pull"]}]},
           headers=alice)
    push_image(c, "team/app", "v1")
    push_image(c, "teamx/app", "v1")
    assert c.delete(f"{API}/namespaces/team", headers=alice).status_code == 204
    assert c.get("/v2/team/app/manifests/v1").status_code == 404
    assert c.get("/v2/teamx/app/manifests/v1").status_code == 200
    assert [x["name"] for x in c.get(f"{API}/repositories").json()["items"]] == ["teamx/app"]
    # recreate: the robot is gone, and pushes work again
    make_ns(c, "team", alice)
    assert c.get(f"{API}/namespaces/team/robots", headers=alice).json()["items"] == []
    push_image(c, "team/app", "v2")
    assert [t["name"] for t in c.get(f"{API}/repositories/team/app/tags").json()["items"]] == ["v2"]


# -- credentials ---------------------------------------------------------------------------------------
def test_registry_password(app_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    err(c.put(f"{API}/user/registry-password", json={"password": "short"}, headers=alice), 422, "invalid")
    assert c.put(f"{API}/user/registry-password", json={"password": "registry-secret"}, headers=alice).status_code == 204
    token(c, "alice", "registry-secret")
    # the registry password is for docker login, not for this API
    err(c.get(f"{API}/user", headers=basic("alice", "registry-secret")), 401, "unauthenticated")
    assert c.get(f"{API}/users").json()["items"][1]["has_registry_password"] is True
    assert ("registry_password.set", "user:alice") in audit_actions(c)


def test_temporary_passwords(app_client: TestClient, services: Any) -> None:
    c = app_client
    alice = make_user(c, "alice")
    make_ns(c, "team", alice)
    r = c.post(f"{API}/user/temp-passwords", json={"description": "ci", "actions": ["pull"],
                                                    "repositories": ["team/*"]}, headers=alice)
    assert r.status_code == 201, r.text
    temp = r.json()
    assert temp["password"].startswith(f"dkt_{temp['id']}_") and temp["actions"] == ["pull"]
    assert temp["username"] == "alice"
    lifetime = _seconds(temp["expires_at"]) - _seconds(temp["created_at"])
    assert abs(lifetime - 3600) < 5
    listed = c.get(f"{API}/user/temp-passwords", headers=alice).json()["items"]
    assert [t["id"] for t in listed] == [temp["id"]] and "password" not in listed[0]
    registry_token = token(c, "alice", temp["password"], ["repository:team/app:pull,push"])
    err(c.get(f"{API}/user", headers=bearer(registry_token)), 401, "unauthenticated")  # a registry token
    t = management_token(c, "alice", temp["password"])
    # a limited temporary password learns who it is, and nothing more (see test_management_tokens)
    me = c.get(f"{API}/user", headers=bearer(t)).json()
    assert me["read_only"] is True and me["temp_password_id"] == temp["id"]
    err(c.post(f"{API}/namespaces", json={"name": "evil"}, headers=bearer(t)), 403, "forbidden")
    err(c.post(f"{API}/user/temp-passwords", json={}, headers=bearer(t)), 403, "forbidden")
    err(c.delete(f"{API}/user/temp-passwords/{temp['id']}", headers=bearer(t)), 403, "forbidden")
    err(c.put(f"{API}/user/registry-password", json={"password": "x" * 10}, headers=bearer(t)), 403, "forbidden")
    # nor as Basic credentials on this API
    err(c.get(f"{API}/user", headers=basic("alice", temp["password"])), 401, "unauthenticated")
    # somebody else cannot revoke it
    bob = make_user(c, "bob")
    err(c.delete(f"{API}/user/temp-passwords/{temp['id']}", headers=bob), 404, "not_found")
    # revoking stops it at once, at the token endpoint and for the tokens issued with it
    assert c.delete(f"{API}/user/temp-passwords/{temp['id']}", headers=alice).status_code == 204
    r = c.get("/auth/token", params={"service": "dockyard"}, headers=basic("alice", temp["password"]))
    assert r.status_code == 401
    err(c.get(f"{API}/user", headers=bearer(t)), 401, "unauthenticated")
    assert c.get(f"{API}/user/temp-passwords", headers=alice).json()["items"][0]["revoked_at"]
    # an expired one is refused
    r = c.post(f"{API}/user/temp-passwords", json={"ttl_seconds": 60}, headers=alice)
    expired = r.json()
    token(c, "alice", expired["password"])
    with services.db.write() as conn:
        conn.execute(update(temp_passwords).where(temp_passwords.c.id == expired["id"])
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    r = c.get("/auth/token", params={"service": "dockyard"}, headers=basic("alice", expired["password"]))
    assert r.status_code == 401
    err(c.post(f"{API}/user/temp-passwords", json={"ttl_seconds": 10}, headers=alice), 422, "invalid")
    err(c.post(f"{API}/user/temp-passwords", json={"actions": ["rm"]}, headers=alice), 422, "invalid")
    # administrators may revoke anyone's
    other = c.post(f"{API}/user/temp-passwords", json={}, headers=alice).json()
    assert c.delete(f"{API}/user/temp-passwords/{other['id']}").status_code == 204
    assert ("temp_password.revoke", "user:alice") in audit_actions(c, action="temp_password.")


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_robot_accounts(app_client: TestClient, services: Any) -> None:
    c = app_client
    alice = make_user(c, "alice")
    make_ns(c, "team", alice)
    err(c.post(f"{API}/namespaces/team/robots", json={"name": "ci", "permissions": [
        {"repositories": "other/*", "actions": ["push"]}]}, headers=alice), 422, "invalid")
    err(c.post(f"{API}/namespaces/team/robots", json={"name": "CI$", "permissions": []}, headers=alice), 422, "invalid")
    r = c.post(f"{API}/namespaces/team/robots", json={
        "name": "ci", "description": "builds", "ttl_seconds": 3600,
        "permissions": [{"repositories": "app-*", "actions": ["pull", "push"]}]}, headers=alice)
    assert r.status_code == 201, r.text
    robot = r.json()
    assert robot["username"] == "robot$team+ci" and robot["secret"].startswith("dkr_") and robot["expires_at"]
    err(c.post(f"{API}/namespaces/team/robots", json={"name": "ci", "permissions": []}, headers=alice), 409, "conflict")
    listed = c.get(f"{API}/namespaces/team/robots", headers=alice).json()["items"]
    assert [x["username"] for x in listed] == ["robot$team+ci"] and "secret" not in listed[0]
    token(c, "robot$team+ci", robot["secret"], ["repository:team/app-1:pull,push"])
    t = management_token(c, "robot$team+ci", robot["secret"])
    # the robot is for the registry: the management API tells it who it is, and nothing more
    push_image(c, "team/app-1", "v1")  # (as admin; the robot's token is checked below)
    me = c.get(f"{API}/user", headers=bearer(t)).json()
    assert me["kind"] == "robot" and me["read_only"] is True
    err(c.post(f"{API}/namespaces", json={"name": "robotns"}, headers=bearer(t)), 403, "forbidden")
    err(c.post(f"{API}/repositories", json={"name": "team/app-2"}, headers=bearer(t)), 403, "forbidden")
    err(c.delete(f"{API}/repositories/team/app-1", headers=bearer(t)), 403, "forbidden")
    err(c.post(f"{API}/namespaces/team/robots/ci/rotate", json={}, headers=bearer(t)), 403, "forbidden")
    err(c.get(f"{API}/repositories", headers=bearer(t)), 403, "forbidden")
    # rotate: the old secret stops working
    r = c.post(f"{API}/namespaces/team/robots/ci/rotate", json={}, headers=alice)
    assert r.status_code == 200
    new_secret = r.json()["secret"]
    assert new_secret != robot["secret"]
    assert c.get("/auth/token", headers=basic("robot$team+ci", robot["secret"])).status_code == 401
    token(c, "robot$team+ci", new_secret)
    assert c.get(f"{API}/namespaces/team/robots/ci", headers=alice).json()["rotated_at"]
    # disable, change permissions, expiry
    r = c.patch(f"{API}/namespaces/team/robots/ci", json={"disabled": True, "expires_at": None,
                                                          "permissions": [{"repositories": "*", "actions": ["pull"]}]},
                headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True and r.json()["expires_at"] is None
    assert r.json()["permissions"] == [{"repositories": "*", "actions": ["pull"]}]
    assert c.get("/auth/token", headers=basic("robot$team+ci", new_secret)).status_code == 401
    err(c.get(f"{API}/user", headers=bearer(t)), 401, "unauthenticated")  # its old tokens too
    c.patch(f"{API}/namespaces/team/robots/ci", json={"disabled": False}, headers=alice)
    token(c, "robot$team+ci", new_secret)
    # an expired robot is refused
    with services.db.write() as conn:
        conn.execute(update(robots).where(robots.c.name == "ci").values(expires_at=utcnow() - timedelta(seconds=1)))
    assert c.get("/auth/token", headers=basic("robot$team+ci", new_secret)).status_code == 401
    assert c.delete(f"{API}/namespaces/team/robots/ci", headers=alice).status_code == 204
    err(c.get(f"{API}/namespaces/team/robots/ci", headers=alice), 404, "not_found")
    actions = [a for a, target in audit_actions(c, target="robot$team+ci")]
    assert actions == ["robot.delete", "robot.update", "robot.update", "robot.rotate", "robot.create"]


# -- users, authentication ------------------------------------------------------------------------------
def test_users_are_managed_by_administrators(app_client: TestClient, anon_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    err(c.get(f"{API}/users", headers=alice), 403, "forbidden")
    err(c.post(f"{API}/users", json={"username": "x", "password": PASSWORD}, headers=alice), 403, "forbidden")
    err(c.patch(f"{API}/users/alice", json={"is_admin": True}, headers=alice), 403, "forbidden")
    err(c.post(f"{API}/users", json={"username": "alice", "password": PASSWORD}), 409, "conflict")
    err(c.post(f"{API}/users", json={"username": "robot$x+y", "password": PASSWORD}), 422, "invalid")
    err(c.post(f"{API}/users", json={"username": "bob", "password": "short"}), 422, "invalid")
    r = c.patch(f"{API}/users/alice", json={"password": "another-password"})
    assert r.status_code == 200
    err(c.get(f"{API}/user", headers=alice), 401, "unauthenticated")
    alice = basic("alice", "another-password")
    assert c.patch(f"{API}/users/alice", json={"disabled": True}).json()["disabled"] is True
    err(c.get(f"{API}/user", headers=alice), 401, "unauthenticated")
    c.patch(f"{API}/users/alice", json={"disabled": False, "is_admin": True})
    assert c.get(f"{API}/user", headers=alice).json()["is_admin"] is True
    c.patch(f"{API}/users/alice", json={"is_admin": False})
    err(c.patch(f"{API}/users/admin", json={"is_admin": False}), 409, "conflict")
    err(c.patch(f"{API}/users/admin", json={"disabled": True}), 409, "conflict")
    err(c.patch(f"{API}/users/ghost", json={"disabled": True}), 404, "not_found")
    err(anon_client.get(f"{API}/user"), 401, "unauthenticated")
    assert anon_client.get(f"{API}/user").headers["www-authenticate"].startswith("Bearer ")  # never Basic
    err(anon_client.get(f"{API}/namespaces", headers=bearer("not.a.token")), 401, "unauthenticated")
    anon_token = anon_client.get("/auth/token", params={"service": "dockyard"}).json()["token"]
    err(anon_client.get(f"{API}/user", headers=bearer(anon_token)), 401, "unauthenticated")
    # a user's own management token works; their registry token (from docker login) does not
    err(c.get(f"{API}/user", headers=bearer(token(c, "alice", "another-password"))), 401, "unauthenticated")
    t = management_token(c, "alice", "another-password")
    assert c.get(f"{API}/user", headers=bearer(t)).json()["username"] == "alice"
    assert c.post(f"{API}/namespaces", json={"name": "alices"}, headers=bearer(t)).status_code == 201


def test_repeated_failed_logins_are_slowed_down(app_client: TestClient) -> None:
    c = app_client
    make_user(c, "alice")
    wrong = basic("alice", "wrong-password")
    for _ in range(5):
        err(c.get(f"{API}/user", headers=wrong), 401, "unauthenticated")
    r = c.get(f"{API}/user", headers=wrong)
    err(r, 429, "too_many_requests")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    err(c.get(f"{API}/user", headers=basic("alice", PASSWORD)), 429, "too_many_requests")  # even the right one
    # one throttle for every login: the token endpoint refuses too
    assert c.get("/auth/token", params={"service": "dockyard"}, headers=basic("alice", PASSWORD)).status_code == 429
    assert c.get(f"{API}/user").status_code == 200  # other users are not affected


def test_malformed_requests(app_client: TestClient) -> None:
    c = app_client
    err(c.get(f"{API}/nothing/here"), 404, "not_found")
    r = c.put(f"{API}/namespaces")
    err(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]
    err(c.post(f"{API}/namespaces", content=b"{not json", headers={"Content-Type": "application/json"}), 422, "invalid")
    err(c.post(f"{API}/namespaces", json=["x"]), 422, "invalid")
    err(c.post(f"{API}/namespaces", json={"name": "ok", "owner": "mallory"}), 422, "invalid")
    err(c.post(f"{API}/namespaces", json={"name": "ok", "public": "yes please"}), 422, "invalid")
    err(c.post(f"{API}/namespaces", content=b"x" * (1 << 21), headers={"Content-Type": "application/json"}),
        422, "invalid")
    err(c.get(f"{API}/user", headers={"Authorization": "Basic !!!"}), 401, "unauthenticated")
    err(c.get(f"{API}/user", headers={"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}),
        401, "unauthenticated")
    err(c.get(f"{API}/user", headers={"Authorization": "Digest x"}), 401, "unauthenticated")
    err(c.get(f"{API}/repositories/UPPER/case"), 422, "invalid")
    assert c.get(f"{API}/namespaces").json()["items"] == []


def test_audit_visibility(app_client: TestClient, services: Any) -> None:
    c = app_client
    alice, bob = make_user(c, "alice"), make_user(c, "bob")
    make_ns(c, "team", alice)
    make_ns(c, "teamx", bob)
    c.put(f"{API}/namespaces/team/members/bob", json={"role": "developer"}, headers=alice)
    c.post(f"{API}/repositories", json={"name": "team/app"}, headers=bob)
    c.post(f"{API}/repositories", json={"name": "teamx/app"}, headers=bob)
    push_image(c, "team/app", "v1")
    services.events.dispatch_all()
    alice_view = set(audit_actions(c, alice))
    assert ("namespace.create", "team") in alice_view and ("repository.create", "team/app") in alice_view
    assert ("manifest.push", "team/app:v1") in alice_view
    assert not any(target.startswith("teamx") for _, target in alice_view)
    assert ("user.create", "user:alice") not in alice_view
    bob_view = set(audit_actions(c, bob))
    assert ("repository.create", "team/app") in bob_view  # his own action
    assert ("namespace.create", "team") not in bob_view  # a developer there, not an owner
    assert ("namespace.create", "teamx") in bob_view
    everything = set(audit_actions(c, limit=500))
    assert ("user.create", "user:alice") in everything and alice_view < everything
