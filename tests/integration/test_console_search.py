"""The console's search (a box in the header, /console/search) ranks as `docker search` does and
shows only what the user may pull; a repository's overview shows its stars and a star button."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    PASSWORD,
    add_user,
    app,
    attr,
    console,
    flashes,
    logged_in,
    post,
    registry,
    texts,
)
from tests.integration.helpers import no_server_errors  # noqa: F401  (an autouse fixture)

API = "/api/v1"


def _setup(registry: TestClient, services: Any) -> None:
    assert registry.post(f"{API}/namespaces", json={"name": "pub", "public": True}).status_code == 201
    assert registry.post(f"{API}/namespaces", json={"name": "priv"}).status_code == 201
    for name, summary in (("pub/nginx", "a web server"), ("pub/tools", "nginx helpers"), ("priv/nginx", "ours")):
        assert registry.post(f"{API}/repositories", json={"name": name, "summary": summary}).status_code == 201
    add_user(services, "carol")


def test_search_ranks_and_hides_what_a_user_may_not_pull(app: Starlette, registry: TestClient, services: Any) -> None:
    _setup(registry, services)
    carol = logged_in(app, "carol", PASSWORD)
    page = carol.get("/console/search", params={"q": "nginx"})
    assert page.status_code == 200
    assert attr(page.text, "search-result", "data-name") == ["pub/nginx", "pub/tools"]  # never priv/nginx
    assert texts(page.text, "header-search") == [""]
    assert carol.get("/console/search").status_code == 200  # no term: the form alone


def test_star_and_unstar_from_the_overview(app: Starlette, registry: TestClient, services: Any) -> None:
    _setup(registry, services)
    carol = logged_in(app, "carol", PASSWORD)
    assert texts(carol.get("/console/repo/pub/nginx").text, "star-count") == ["★ 0"]
    answer = post(carol, "/console/repo/pub/nginx/-/star", on="1")
    assert answer.status_code == 303
    assert "Starred pub/nginx." in flashes(carol, answer, "ok")
    assert texts(carol.get("/console/repo/pub/nginx").text, "star-count") == ["★ 1"]
    assert texts(carol.get("/console/repo/pub/nginx").text, "star-toggle") == ["Unstar"]
    post(carol, "/console/repo/pub/nginx/-/star", on="0")
    assert texts(carol.get("/console/repo/pub/nginx").text, "star-count") == ["★ 0"]
    refused = post(carol, "/console/repo/priv/nginx/-/star", on="1")  # not hers to see
    assert any("not found" in m for m in flashes(carol, refused, "error")), refused.headers
    assert services.management.search_store.stars("priv/nginx", "carol") == (0, False)
