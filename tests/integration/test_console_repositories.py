"""Repositories in the web console: creating, editing and deleting them, the repository list and
its search (with htmx partial pages), and the registry addresses and docker commands shown on a
repository's overview.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import ADMIN
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    BASE,
    app,
    attr,
    console,
    flashes,
    location,
    logged_in,
    make_app,
    make_namespace,
    make_repository,
    post,
    refusal,
    registry,
    texts,
)
from tests.integration.helpers import no_server_errors  # noqa: F401


# -- repositories -------------------------------------------------------------------------------------------
def test_repository_lifecycle(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    r = post(console, "/console/repositories", namespace="team", name="app", summary="The app",
             description="Line one\nLine two", visibility="public")
    assert location(r) == "/console/repo/team/app"
    assert flashes(console, r, "ok") == ["Repository team/app created."]
    make_repository(console, "team", "tool")

    listing = console.get("/console/repositories").text
    assert attr(listing, "repository-row", "data-name") == ["team/app", "team/tool"]
    assert "The app" in texts(listing, "repository-row")[0]
    overview = console.get("/console/repo/team/app").text
    assert "Line one\nLine two" in overview and "The app" in overview

    r = post(console, "/console/repo/team/app/-/settings", summary="New summary", description="", visibility="private")
    assert location(r) == "/console/repo/team/app/-/settings"
    assert flashes(console, r, "ok") == ["Repository team/app saved."]
    settings_page = console.get("/console/repo/team/app/-/settings").text
    assert 'value="New summary"' in settings_page
    assert '<option value="private" selected>' in settings_page
    r = post(console, "/console/repo/team/app/-/settings", visibility="sometimes")
    assert flashes(console, r, "error")

    r = post(console, "/console/repo/team/app/-/delete")
    assert location(r) == "/console/repositories?namespace=team"
    assert flashes(console, r, "ok") == ["Repository team/app deleted."]
    assert attr(console.get("/console/repositories").text, "repository-row", "data-name") == ["team/tool"]
    assert console.get("/console/repo/team/app").status_code == 404


def test_repository_create_errors(console: TestClient) -> None:
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    for form in ({"namespace": "team", "name": "app"}, {"namespace": "team", "name": "Bad Name"},
                 {"namespace": "nowhere", "name": "app"}, {"namespace": "team", "name": ""},
                 {"namespace": "team", "name": "x", "visibility": "secret"}):
        r = post(console, "/console/repositories", **form)
        assert refusal(console, r), form
    assert attr(console.get("/console/repositories").text, "repository-row", "data-name") == ["team/app"]


def test_repository_search_and_htmx_partial(console: TestClient) -> None:
    make_namespace(console, "team")
    make_namespace(console, "other")
    for ns, name in (("team", "web-app"), ("team", "worker"), ("other", "web-site")):
        make_repository(console, ns, name)
    names = lambda html: attr(html, "repository-row", "data-name")  # noqa: E731
    assert names(console.get("/console/repositories", params={"q": "web"}).text) == ["other/web-site", "team/web-app"]
    listed = lambda **params: names(console.get("/console/repositories", params=params).text)  # noqa: E731
    assert listed(q="web", namespace="team") == ["team/web-app"]
    assert listed(namespace="team") == ["team/web-app", "team/worker"]
    none = console.get("/console/repositories", params={"q": "zzz"}).text
    assert names(none) == [] and "No repositories found." in none

    partial = console.get("/console/repositories", params={"q": "work"},
                          headers={"HX-Request": "true", "HX-Target": "repo-list"})
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith("<table")
    assert "<html" not in partial.text and "<form" not in partial.text
    assert names(partial.text) == ["team/worker"]
    # htmx aiming elsewhere gets the whole page
    page = console.get("/console/repositories", params={"q": "work"}, headers={"HX-Request": "true"})
    assert "<html" in page.text and names(page.text) == ["team/worker"]


def test_repository_search_is_literal(console: TestClient) -> None:
    # regression: % and _ were SQL LIKE wildcards
    make_namespace(console, "team")
    for name in ("web-app", "worker"):
        make_repository(console, "team", name)
    for q in ("%", "_", "w_b", "w%r"):
        page = console.get("/console/repositories", params={"q": q}).text
        assert attr(page, "repository-row", "data-name") == [], q


def test_repository_search_ignores_case(console: TestClient) -> None:
    # regression: it did on SQLite only (LIKE); on PostgreSQL ?q=WEB found nothing
    make_namespace(console, "team")
    make_repository(console, "team", "web-app")
    page = console.get("/console/repositories", params={"q": "WEB"}).text
    assert attr(page, "repository-row", "data-name") == ["team/web-app"]


def test_overview_shows_the_commands_for_the_default_address(console: TestClient) -> None:
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    page = console.get("/console/repo/team/app").text
    assert texts(page, "cmd-login") == ["docker login --username=admin 127.0.0.1:5000"]
    assert texts(page, "cmd-tag") == ["docker tag [ImageId] 127.0.0.1:5000/team/app:[tag]"]
    assert texts(page, "cmd-push") == ["docker push 127.0.0.1:5000/team/app:[tag]"]
    assert texts(page, "cmd-pull") == ["docker pull 127.0.0.1:5000/team/app:[tag]"]
    assert '<option value="default:public" selected>' in page


def test_overview_picks_a_configured_regions_address(make_app: Callable[..., Starlette]) -> None:
    regions = [{"name": "cn-hangzhou", "label": "China (Hangzhou)", "public": "registry.cn-hangzhou.example.com",
                "vpc": "registry-vpc.cn-hangzhou.example.com:5000"},
               {"name": "eu-west", "internal": "registry-internal.eu-west.example.com"}]
    app = make_app(regions=regions)
    with TestClient(app, base_url=BASE):
        console = logged_in(app, *ADMIN)
        make_namespace(console, "team")
        make_repository(console, "team", "app")
        page = console.get("/console/repo/team/app").text
        assert re.findall(r'<option value="([^"]+)"', page) == [
            "cn-hangzhou:public", "cn-hangzhou:vpc", "eu-west:internal"]
        assert texts(page, "cmd-push") == ["docker push registry.cn-hangzhou.example.com/team/app:[tag]"]

        page = console.get("/console/repo/team/app", params={"address": "cn-hangzhou:vpc"}).text
        assert '<option value="cn-hangzhou:vpc" selected>' in page
        assert texts(page, "cmd-login") == ["docker login --username=admin registry-vpc.cn-hangzhou.example.com:5000"]
        assert texts(page, "cmd-tag") == [
            "docker tag [ImageId] registry-vpc.cn-hangzhou.example.com:5000/team/app:[tag]"]
        assert texts(page, "cmd-push") == ["docker push registry-vpc.cn-hangzhou.example.com:5000/team/app:[tag]"]
        assert texts(page, "cmd-pull") == ["docker pull registry-vpc.cn-hangzhou.example.com:5000/team/app:[tag]"]

        partial = console.get("/console/repo/team/app", params={"address": "eu-west:internal"},
                              headers={"HX-Request": "true", "HX-Target": "commands"})
        assert "<html" not in partial.text
        assert texts(partial.text, "cmd-pull") == ["docker pull registry-internal.eu-west.example.com/team/app:[tag]"]

        for unknown in ("nowhere:vpc", "eu-west:public", "x" * 5000):
            page = console.get("/console/repo/team/app", params={"address": unknown}).text
            assert texts(page, "cmd-push") == ["docker push registry.cn-hangzhou.example.com/team/app:[tag]"]


def test_overview_never_shows_raw_host_text(make_app: Callable[..., Starlette]) -> None:
    """Listening on all interfaces with no public_url, the commands use the Host the browser
    asked for, but only a well-formed HOST[:PORT]; anything else falls back to the listen address."""
    app = make_app(server={"listen": "0.0.0.0:5000"})
    with TestClient(app, base_url=BASE):
        console = logged_in(app, *ADMIN)
        make_namespace(console, "team")
        make_repository(console, "team", "app")
        page = console.get("/console/repo/team/app", headers={"Host": "registry.example.com:8443"}).text
        assert texts(page, "cmd-push") == ["docker push registry.example.com:8443/team/app:[tag]"]
        for hostile in ("evil.example.com/x y", 'a"b', "a,b"):
            page = console.get("/console/repo/team/app", headers={"Host": hostile}).text
            assert texts(page, "cmd-push") == ["docker push 0.0.0.0:5000/team/app:[tag]"], hostile
