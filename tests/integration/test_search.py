"""`docker search` (GET /v1/search) in Docker Hub's answer format, and stars: ranking (exact name,
then name prefixes, then the description), paging, visibility (a private repository never
appears to someone who may not pull it), the credentials /v2 takes, and star counts."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from dockyard.app import Services
from tests.conftest import ADMIN, basic

API = "/api/v1"
ALICE = ("alice", "alice-password-1")


def setup(c: TestClient) -> None:
    assert c.post(f"{API}/namespaces", json={"name": "pub", "public": True}).status_code == 201
    assert c.post(f"{API}/namespaces", json={"name": "priv"}).status_code == 201
    assert c.post(f"{API}/namespaces", json={"name": "library", "public": True}).status_code == 201
    for name, summary, description in (
            ("library/nginx", "the official web server", None),
            ("pub/nginx", "a web server", None),
            ("pub/nginx-extras", None, None),
            ("pub/tools", None, "Tools.\nIncludes an nginx configuration checker."),
            ("pub/other", "nothing to see", None),
            ("priv/nginx", "our private web server", None)):
        r = c.post(f"{API}/repositories", json={"name": name, "summary": summary, "description": description})
        assert r.status_code == 201, r.text
    assert c.post(f"{API}/users", json={"username": ALICE[0], "password": ALICE[1]}).status_code == 201


def search(c: TestClient, q: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    r = c.get("/v1/search", params={"q": q, **params}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def test_anonymous_callers_find_public_repositories_ranked(app_client: TestClient, anon_client: TestClient) -> None:
    setup(app_client)
    found = search(anon_client, "nginx")
    assert found["query"] == "nginx" and found["page"] == 1 and found["num_results"] == 4 and found["num_pages"] == 1
    assert [r["name"] for r in found["results"]] == ["library/nginx", "pub/nginx", "pub/nginx-extras", "pub/tools"]
    first = found["results"][0]
    assert first == {"name": "library/nginx", "description": "the official web server", "star_count": 0,
                     "is_official": True, "is_automated": False}
    assert found["results"][1]["is_official"] is False
    assert found["results"][3]["description"] == "Tools."  # the description's first line, with no summary
    assert "priv/nginx" not in {r["name"] for r in found["results"]}


def test_paging(app_client: TestClient, anon_client: TestClient) -> None:
    setup(app_client)
    page2 = search(anon_client, "nginx", n=3, page=2)
    assert (page2["num_results"], page2["num_pages"], page2["page"]) == (4, 2, 2)
    assert [r["name"] for r in page2["results"]] == ["pub/tools"]
    assert search(anon_client, "nginx", n=3, page=3)["results"] == []
    for params in ({"n": 0}, {"n": 101}, {"page": 0}, {"n": "x"}):
        assert anon_client.get("/v1/search", params={"q": "nginx", **params}).status_code == 400
    assert anon_client.get("/v1/search", params={"q": ""}).status_code == 400
    assert anon_client.get("/v1/search", params={"q": "x" * 101}).status_code == 400


def test_members_and_administrators_see_more(app_client: TestClient, anon_client: TestClient) -> None:
    setup(app_client)
    assert app_client.put(f"{API}/namespaces/priv/members/alice", json={"role": "guest"}).status_code == 200
    as_alice = {r["name"] for r in search(anon_client, "nginx", basic(*ALICE))["results"]}
    assert "priv/nginx" in as_alice
    as_admin = {r["name"] for r in search(anon_client, "nginx", basic(*ADMIN))["results"]}
    assert "priv/nginx" in as_admin
    # a stranger, signed in, still sees public repositories only
    assert app_client.post(f"{API}/users", json={"username": "bob", "password": "bob-password-1"}).status_code == 201
    assert "priv/nginx" not in {r["name"] for r in search(anon_client, "nginx", basic("bob", "bob-password-1"))["results"]}


def test_the_credentials_v2_takes(app_client: TestClient, anon_client: TestClient) -> None:
    setup(app_client)
    assert app_client.put(f"{API}/namespaces/priv/members/alice", json={"role": "guest"}).status_code == 200
    token = anon_client.get("/auth/token", params={"service": "dockyard", "scope": "repository:priv/nginx:pull"},
                            headers=basic(*ALICE)).json()["token"]
    assert "priv/nginx" in {r["name"] for r in search(anon_client, "nginx", {"Authorization": f"Bearer {token}"})["results"]}
    bad = anon_client.get("/v1/search", params={"q": "nginx"}, headers=basic("alice", "wrong-password"))
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
    assert anon_client.get("/v1/search", params={"q": "nginx"},
                           headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_stars_count_in_search_and_need_a_signed_in_user(app_client: TestClient, anon_client: TestClient) -> None:
    setup(app_client)
    alice = basic(*ALICE)
    r = anon_client.put(f"{API}/repositories/pub/tools/star", headers=alice)
    assert r.status_code == 200 and r.json() == {"star_count": 1, "starred": True}
    assert anon_client.put(f"{API}/repositories/pub/tools/star", headers=alice).json()["star_count"] == 1  # once
    assert app_client.put(f"{API}/repositories/pub/tools/star").json() == {"star_count": 2, "starred": True}
    assert app_client.get(f"{API}/repositories/pub/tools/star").json() == {"star_count": 2, "starred": True}
    tools = [r for r in search(anon_client, "tools")["results"] if r["name"] == "pub/tools"]
    assert tools[0]["star_count"] == 2
    assert anon_client.delete(f"{API}/repositories/pub/tools/star", headers=alice).json() == {
        "star_count": 1, "starred": False}
    assert anon_client.put(f"{API}/repositories/pub/tools/star").status_code == 401  # anonymous
    assert anon_client.put(f"{API}/repositories/priv/nginx/star", headers=alice).status_code == 404  # not visible
    assert anon_client.put(f"{API}/repositories/pub/missing/star", headers=alice).status_code == 404


def test_stars_rank_equal_matches_and_automated_builds_show(app_client: TestClient, anon_client: TestClient,
                                                            services: Services) -> None:
    setup(app_client)
    assert app_client.put(f"{API}/repositories/pub/nginx/star").status_code == 200
    assert [r["name"] for r in search(anon_client, "nginx")["results"]][:2] == ["pub/nginx", "library/nginx"]
    services.builds.store.put_config("pub", "pub/tools", {
        "provider": "git", "url": "https://example.com/tools.git", "token": None, "ssh_key": None,
        "webhook_secret": "x", "rules": [], "auto_build": True, "timeout_seconds": None, "cancel_superseded": True,
        "poll_interval_seconds": None}, "admin")
    tools = [r for r in search(anon_client, "tools")["results"] if r["name"] == "pub/tools"]
    assert tools[0]["is_automated"] is True
