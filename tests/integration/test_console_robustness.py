"""Odd input to the web console is never a server error and changes nothing: path traversal and
malformed paths, huge query values, NUL bytes in URLs and forms, garbage cookies and odd form
bodies.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    BASE,
    FLASH,
    LANG,
    SESSION,
    app,
    attr,
    config,
    console,
    console_client,
    csrf,
    flashes,
    location,
    login,
    make_namespace,
    post,
    registry,
    set_cookies,
    tags_of,
    texts,
)
from tests.integration.helpers import no_server_errors, push_image, raw_request  # noqa: F401


# -- odd URLs and inputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw_path", [
    b"/console/repo/../../etc/passwd",
    b"/console/repo/..%2f..%2fetc%2fpasswd",
    b"/console/repo/team/app/-/versions/..%2f..%2fx",
    b"/console/repo/team/app/-/versions/../../../x",
    b"/console/repo/team/app/-/versions/%2e%2e",
    b"/console/repo/team/app/-/tags/..%2f..%2fv1/delete",
    b"/console/repo/team/app/-/",
    b"/console/repo/",
    b"/console/repo/-/-/-/",
    b"/console/repo/team//app",
    b"/console/repo/team/app/-/versions/v1%00",
    b"/console/repo/team/%C3%A9/-/versions",
    b"/console/repo/team/%ff%fe",
    b"/console/namespaces/..%2f..",
    b"/console/namespaces/team/members/..%2fadmin/remove",
    b"/console/lang/..%2f..%2fetc",
    b"/console/static/..%2f..%2fapp.py",
    b"/console/repo/" + b"a/" * 600 + b"b",
])
def test_odd_paths_are_never_server_errors(console: TestClient, registry: TestClient, raw_path: bytes) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    cookie = [(b"cookie", f"{SESSION}={console.cookies[SESSION]}".encode())]
    r = raw_request(registry, "GET", raw_path, headers=cookie, with_auth=False)
    assert r.status_code in (200, 303, 307, 404, 405, 422) or 400 <= r.status_code < 500, r.status_code
    assert "root:" not in r.text
    r = raw_request(registry, "POST", raw_path, headers=cookie + [(b"x-csrf-token", csrf(console).encode())],
                    with_auth=False)
    assert r.status_code < 500
    assert tags_of(registry, "team/app") == ["v1"]


@pytest.mark.parametrize("path", [
    "/console/repositories?q={long}",
    "/console/repositories?namespace={long}",
    "/console/repositories?after={long}",
    "/console/namespaces?after={long}",
    "/console/repo/team/app?address={long}",
    "/console/repo/team/app/-/versions?q={long}",
    "/console/repo/team/app/-/versions?page={digits}&per_page={digits}",
    "/console/repo/team/app/-/versions?page=99999999&per_page=20",
    "/console/audit?actor={long}&action={long}&target={long}",
    "/console/audit?before={long}",
    "/console/audit?before=99999999",
    "/console/login?next={long}",
    "/console/lang/zh-CN?next=/console/{long}",
])
def test_long_query_values_are_never_server_errors(console: TestClient, registry: TestClient, path: str) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    r = console.get(path.format(long="x" * 20000, digits="9" * 50))
    assert r.status_code < 500
    assert r.status_code in (200, 303) or 400 <= r.status_code < 500


@pytest.mark.parametrize("before", ["9" * 30, "99999999999", "2147483648"])
def test_audit_with_a_huge_before_is_not_a_server_error(console: TestClient, before: str) -> None:
    # regression: int(before) went to the query unchecked (past 2**31 on PostgreSQL, 2**63 on SQLite: a 500)
    r = console.get("/console/audit", params={"before": before})
    assert r.status_code == 200 or 400 <= r.status_code < 500


NUL = "a\x00b"
NUL_GETS = [
    ("/console/repositories", {"q": NUL}),
    ("/console/repositories", {"after": NUL}),
    ("/console/namespaces", {"after": NUL}),
    ("/console/namespaces/a%00b", {}),
    ("/console/repo/team/app/-/versions", {"q": NUL}),
    ("/console/audit", {"actor": NUL}),
    ("/console/audit", {"action": NUL}),
    ("/console/audit", {"target": NUL}),
]
NUL_POSTS = [
    ("/console/namespaces/team/members", {"username": NUL, "role": "guest"}),
    ("/console/namespaces/team", {"description": NUL}),
    ("/console/repositories", {"namespace": "team", "name": "x", "summary": NUL}),
    ("/console/credentials/temp", {"description": NUL}),
    ("/console/namespaces/team/robots", {"robot": "r", "action_pull": "on", "description": NUL}),
]


# regression: a NUL in a query parameter, path segment or form field reached PostgreSQL (text cannot
# hold one) and was a 500 there
@pytest.mark.parametrize(("path", "params"), NUL_GETS)
def test_nul_bytes_in_urls_are_refused(console: TestClient, registry: TestClient, path: str,
                                       params: dict[str, str]) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    r = console.get(path, params=params)
    assert 400 <= r.status_code < 500


@pytest.mark.parametrize(("path", "form"), NUL_POSTS)
def test_nul_bytes_in_forms_are_refused(console: TestClient, services: Any, path: str, form: dict[str, str]) -> None:
    make_namespace(console, "team", description="before")
    services.events.dispatch_all()
    events = attr(console.get("/console/audit").text, "audit-row", "data-action")
    r = post(console, path, **form)
    assert 400 <= r.status_code < 500 or (r.status_code == 303 and flashes(console, r, "error"))
    assert attr(console.get("/console/audit").text, "audit-row", "data-action") == events
    assert services.namespaces.get("team").description == "before"


def test_nul_bytes_in_the_login_form_are_refused(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)  # the login form is open to anyone
    r = login(client, NUL, "a-password")
    assert 400 <= r.status_code < 500
    assert SESSION not in set_cookies(r)
    r = login(client, "admin", "admin-\x00password")
    assert 400 <= r.status_code < 500
    assert SESSION not in set_cookies(r)


def test_garbage_flash_cookie_is_ignored_even_deeply_nested(app: Starlette, registry: TestClient) -> None:
    # regression: _read_flashes let the RecursionError of deeply nested JSON escape: every page was a 500
    client = TestClient(app, base_url=BASE, follow_redirects=False,
                        headers={"Cookie": f"{FLASH}={base64.urlsafe_b64encode(b'[' * 3000).decode()}"})
    r = client.get("/console/login")
    assert r.status_code == 200
    assert texts(r.text, "flash-error") == []


@pytest.mark.parametrize("value", ["garbage", "!!!", base64.urlsafe_b64encode(b'{"a": 1}').decode(),
                                   base64.urlsafe_b64encode(json.dumps([["error", "<b>x</b>"]]).encode()).decode(),
                                   "x" * 5000])
def test_garbage_cookies_are_ignored(app: Starlette, console: TestClient, value: str) -> None:
    client = TestClient(app, base_url=BASE, follow_redirects=False,
                        headers={"Cookie": f"{FLASH}={value}; {LANG}={value}; {SESSION}={value}"})
    r = client.get("/console/login")
    assert r.status_code == 200
    assert "<b>x</b>" not in r.text
    assert urlsplit(location(client.get("/console/repositories"))).path == "/console/login"
    r = console.get("/console/repositories",
                    headers={"Cookie": f"{SESSION}={console.cookies[SESSION]}; {FLASH}={value}"})
    assert r.status_code == 200


def test_odd_forms_are_never_server_errors(console: TestClient, services: Any) -> None:
    token = csrf(console)
    r = console.post("/console/namespaces", content=b"name=%ff%fe&csrf=" + token.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code < 500
    r = console.post("/console/namespaces", data={f"f{i}": "x" for i in range(300)} | {"csrf": token})
    assert r.status_code < 500
    r = console.post("/console/namespaces", data={"name": "team", "csrf": token}, files={"f": ("a.txt", b"x")})
    assert 400 <= r.status_code < 500
    r = console.post("/console/namespaces", data={"name": "team", "csrf": token, "description": "x" * 70000})
    assert r.status_code == 413
    r = console.post("/console/namespaces", content=b"{}", headers={"Content-Type": "application/json",
                                                                      "X-CSRF-Token": token})
    assert r.status_code < 500
    assert services.namespaces.get("team") is None
