"""The web console's way in and out: the login page and form, the session cookie, sessions that
end (logout, expiry, disabled users, changed passwords), CSRF and Origin checks on every POST,
languages, and the headers of console responses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.meta.db import utcnow
from dockyard.meta.tables import console_sessions
from tests.conftest import ADMIN
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    BASE,
    LANG,
    LOGIN_CSRF,
    PASSWORD,
    SESSION,
    add_user,
    app,
    attr,
    config,
    console,
    console_client,
    csrf,
    csrf_of,
    location,
    logged_in,
    login,
    make_app,
    make_namespace,
    make_repository,
    post,
    registry,
    set_cookies,
    set_member,
    tags_of,
    texts,
)
from tests.integration.helpers import no_server_errors, push_image  # noqa: F401


# -- the way in -------------------------------------------------------------------------------------------
def test_root_redirects_to_the_console(app: Starlette, console: TestClient) -> None:
    anon = console_client(app)
    assert location(anon.get("/")) == "/console/login"
    assert location(anon.get("/console/")) == "/console/login"
    assert location(console.get("/")) == "/console/repositories"
    assert location(console.get("/console/")) == "/console/repositories"


@pytest.mark.parametrize("path", ["/console/repositories", "/console/repositories?q=app&namespace=team",
                                  "/console/namespaces", "/console/namespaces/team", "/console/repo/team/app",
                                  "/console/repo/team/app/-/versions", "/console/credentials", "/console/audit"])
def test_pages_need_a_login(app: Starlette, registry: TestClient, path: str) -> None:
    anon = console_client(app)
    target = location(anon.get(path))
    assert urlsplit(target).path == "/console/login"
    assert parse_qs(urlsplit(target).query)["next"] == [path]
    # htmx cannot show a login form in a fragment: it is told to load the whole page
    r = anon.get(path, headers={"HX-Request": "true", "HX-Target": "repo-list"})
    assert r.status_code == 204
    assert r.headers["hx-redirect"] == target
    assert r.content == b""


def test_posts_need_a_login(app: Starlette, registry: TestClient, services: Any) -> None:
    anon = console_client(app)
    r = anon.post("/console/namespaces", data={"name": "team", "csrf": "x"})
    assert urlsplit(location(r)).path == "/console/login"
    assert services.namespaces.get("team") is None


def test_login_goes_to_next_and_only_inside_the_console(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    page = client.get("/console/login", params={"next": "/console/namespaces?after=a"})
    assert 'name="next" value="/console/namespaces?after=a"' in page.text
    assert location(login(client, *ADMIN, next="/console/namespaces?after=a")) == "/console/namespaces?after=a"
    # once logged in, the login page sends you on
    assert location(client.get("/console/login", params={"next": "/console/audit"})) == "/console/audit"
    for evil in ("https://evil.com/", "//evil.com", "/v2/_catalog"):
        other = console_client(app)
        assert location(login(other, *ADMIN, next=evil)) == "/console/repositories"
    page = console_client(app).get("/console/login", params={"next": '/console/x"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.text


# -- logging in -------------------------------------------------------------------------------------------
def test_wrong_password_is_a_401_page_without_session(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    for username, password in (("admin", "wrong-password"), ("nobody", "whatever-1"), ("", "x")):
        r = login(client, username, password)
        assert r.status_code == 401, r.text[:500]
        assert texts(r.text, "login-error") == ["Wrong user name or password."]
        assert SESSION not in set_cookies(r)
        assert SESSION not in client.cookies
        assert location(client.get("/console/repositories")).startswith("/console/login")


def test_session_cookie_attributes_over_http(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    r = login(client, *ADMIN)
    assert location(r) == "/console/repositories"
    cookie = set_cookies(r)[SESSION]
    assert len(cookie["value"]) >= 32
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert "secure" not in cookie
    assert int(cookie["max-age"]) == 12 * 3600
    assert LOGIN_CSRF in set_cookies(r)  # the login form's token is dropped
    assert client.get("/console/repositories").status_code == 200


def test_session_cookie_is_secure_when_configured(make_app: Callable[..., Starlette]) -> None:
    app = make_app(console={"secure_cookies": "always"})
    with console_client(app) as client:
        page = client.get("/console/login")
        assert "secure" in set_cookies(page)[LOGIN_CSRF]
        r = client.post("/console/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                                "csrf": csrf_of(page.text)},
                        headers={"Cookie": f"{LOGIN_CSRF}={csrf_of(page.text)}"})
        assert r.status_code == 303, r.text[:500]
        cookie = set_cookies(r)[SESSION]
        assert "secure" in cookie and "httponly" in cookie
        assert cookie["samesite"].lower() == "lax" and cookie["path"] == "/"


def test_session_cookie_is_secure_over_https(app: Starlette, registry: TestClient) -> None:
    client = TestClient(app, base_url="https://registry.test", follow_redirects=False)
    r = login(client, *ADMIN)
    assert location(r) == "/console/repositories"
    cookie = set_cookies(r)[SESSION]
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"].lower() == "lax"
    assert client.get("/console/repositories").status_code == 200


def test_login_form_needs_its_csrf_token(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    page = client.get("/console/login")
    token = csrf_of(page.text)
    assert client.cookies.get(LOGIN_CSRF) == token  # the double-submit cookie
    credentials = {"username": ADMIN[0], "password": ADMIN[1]}
    for form in (credentials, {**credentials, "csrf": ""}, {**credentials, "csrf": token + "x"}):
        r = client.post("/console/login", data=form)
        assert r.status_code == 403, r.text[:500]
        assert SESSION not in set_cookies(r)
    # the token without its cookie (another browser's form) is refused too
    stranger = console_client(app)
    r = stranger.post("/console/login", data={**credentials, "csrf": token})
    assert r.status_code == 403
    assert SESSION not in set_cookies(r)
    # and the right pair works
    assert client.post("/console/login", data={**credentials, "csrf": token}).status_code == 303


def test_repeated_wrong_passwords_are_throttled(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    codes = [login(client, "admin", f"wrong-{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    r = login(client, "admin", "wrong-again")
    assert r.status_code == 429
    assert texts(r.text, "login-error") == ["Too many failed logins. Wait a minute and try again."]
    r = login(client, *ADMIN)  # even the right password waits
    assert r.status_code == 429
    assert SESSION not in set_cookies(r)
    # another account is not affected
    assert login(client, "someone-else", "wrong").status_code == 401


# -- the end of a session ---------------------------------------------------------------------------------
def test_logout_ends_the_session(app: Starlette, console: TestClient) -> None:
    token = console.cookies[SESSION]
    refused = console.post("/console/logout")  # without the CSRF token: nothing happens
    assert refused.status_code == 403
    assert console.get("/console/repositories").status_code == 200
    r = post(console, "/console/logout")
    assert location(r) == "/console/login"
    assert set_cookies(r)[SESSION]["value"] in ("", '""')
    assert SESSION not in console.cookies
    # the old cookie, set back by hand, no longer opens anything
    replay = console_client(app, Cookie=f"{SESSION}={token}")
    assert urlsplit(location(replay.get("/console/repositories"))).path == "/console/login"
    r = replay.post("/console/namespaces", data={"name": "x", "csrf": "y"})
    assert urlsplit(location(r)).path == "/console/login"


def test_session_token_is_stored_hashed(console: TestClient, services: Any) -> None:
    token = console.cookies[SESSION]
    with services.db.read() as conn:
        rows = conn.execute(select(console_sessions.c.id, console_sessions.c.csrf)).all()
    assert len(rows) == 1
    assert rows[0].id != token
    assert rows[0].id == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (rows[0].csrf, rows[0].id)


def test_expired_session_ends(app: Starlette, console: TestClient, services: Any) -> None:
    with services.db.write() as conn:
        conn.execute(update(console_sessions).values(expires_at=utcnow()))
    assert urlsplit(location(console.get("/console/repositories"))).path == "/console/login"
    assert services.sessions.purge_expired() == 1


def test_disabling_a_user_ends_their_session(app: Starlette, registry: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    assert bob.get("/console/repositories").status_code == 200
    services.users.set_disabled("bob", True)  # the flag alone is enough
    assert urlsplit(location(bob.get("/console/repositories"))).path == "/console/login"
    services.users.set_disabled("bob", False)
    assert bob.get("/console/repositories").status_code == 200
    # disabling through the management API ends the sessions for good
    r = registry.patch("/api/v1/users/bob", json={"disabled": True})
    assert r.status_code == 200, r.text
    assert registry.patch("/api/v1/users/bob", json={"disabled": False}).status_code == 200
    assert urlsplit(location(bob.get("/console/repositories"))).path == "/console/login"
    with services.db.read() as conn:
        assert conn.execute(select(console_sessions.c.id)).all() == []
    # and the disabled user cannot log in again
    services.users.set_disabled("bob", True)
    assert login(console_client(app), "bob", PASSWORD).status_code == 401


def test_changing_the_account_password_ends_the_session(app: Starlette, registry: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    assert registry.patch("/api/v1/users/bob", json={"password": "a-new-password"}).status_code == 200
    assert urlsplit(location(bob.get("/console/repositories"))).path == "/console/login"
    assert login(console_client(app), "bob", "a-new-password").status_code == 303


# -- CSRF and Origin --------------------------------------------------------------------------------------
def test_posts_without_the_csrf_token_change_nothing(app: Starlette, console: TestClient, registry: TestClient,
                                                     services: Any) -> None:
    add_user(services)
    make_namespace(console, "team", description="before")
    assert location(set_member(console, "team", "bob", "developer"))
    make_repository(console, "team", "app", summary="before")
    push_image(registry, "team/app", "v1", config=config())
    created = post(console, "/console/credentials/temp", ttl_minutes="30")
    temp_id = attr(created.text, "temp-row", "data-id")[0]
    services.events.dispatch_all()  # the push's audit events are dispatched now, not during the attempts
    before = console.get("/console/audit").text
    events = attr(before, "audit-row", "data-action")

    attempts = [
        ("/console/namespaces", {"name": "other"}),
        ("/console/namespaces/team", {"description": "after", "public": "on"}),
        ("/console/namespaces/team/delete", {}),
        ("/console/namespaces/team/members", {"username": "bob", "role": "owner"}),
        ("/console/namespaces/team/members/bob/remove", {}),
        ("/console/namespaces/team/robots", {"robot": "ci", "action_pull": "on"}),
        ("/console/repositories", {"namespace": "team", "name": "other"}),
        ("/console/repo/team/app/-/settings", {"summary": "after"}),
        ("/console/repo/team/app/-/delete", {}),
        ("/console/repo/team/app/-/tags/v1/delete", {}),
        ("/console/credentials/password", {"password": "a-fixed-password", "confirm": "a-fixed-password"}),
        ("/console/credentials/temp", {"ttl_minutes": "30"}),
        (f"/console/credentials/temp/{temp_id}/revoke", {}),
        ("/console/logout", {}),
    ]
    other_session = logged_in(app, "bob", PASSWORD)
    foreign = csrf(other_session)
    for path, form in attempts:
        for token in (None, "", "wrong", foreign):
            data = form if token is None else {**form, "csrf": token}
            r = console.post(path, data=data)
            assert r.status_code == 403, (path, token, r.status_code, r.text[:300])
            assert "The form has expired" in r.text

    services.events.dispatch_all()
    assert attr(console.get("/console/audit").text, "audit-row", "data-action") == events
    ns = services.namespaces.get("team")
    assert ns is not None and ns.description == "before" and not ns.public
    assert services.namespaces.get("other") is None
    assert {m.username: m.role for m in services.namespaces.members("team")} == {"admin": "owner", "bob": "developer"}
    assert tags_of(registry, "team/app") == ["v1"]
    assert texts(console.get("/console/repo/team/app/-/settings").text, "repository-save")
    assert 'value="before"' in console.get("/console/repo/team/app/-/settings").text
    assert texts(console.get("/console/credentials").text, "temp-status") == ["active"]
    assert services.credentials.list_robots("team") == []


def test_posts_from_another_origin_are_refused(console: TestClient, services: Any) -> None:
    token = csrf(console)
    for origin in ("https://evil.com", "http://registry.test.evil.com", "http://evil.com:80"):
        r = console.post("/console/namespaces", data={"name": "team", "csrf": token}, headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text[:300])
        assert "another site" in r.text
    assert services.namespaces.get("team") is None
    r = console.post("/console/namespaces", data={"name": "team", "csrf": token}, headers={"Origin": BASE})
    assert location(r) == "/console/namespaces/team"


def test_csrf_token_in_a_header_is_accepted(console: TestClient, services: Any) -> None:
    token = csrf(console)
    r = console.post("/console/namespaces", data={"name": "team"}, headers={"X-CSRF-Token": token})
    assert location(r) == "/console/namespaces/team"
    assert services.namespaces.get("team") is not None
    assert console.post("/console/namespaces", data={"name": "other"},
                        headers={"X-CSRF-Token": token[:-1]}).status_code == 403
    assert services.namespaces.get("other") is None


def test_pages_carry_the_csrf_token_for_htmx(console: TestClient) -> None:
    token = csrf(console)
    page = console.get("/console/repositories").text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page


# -- languages ------------------------------------------------------------------------------------------------
def html_lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found, html[:300]
    return found.group(1)


def test_language_switch(console: TestClient) -> None:
    assert html_lang(console.get("/console/repositories").text) == "en"
    r = console.get("/console/lang/zh-CN", params={"next": "/console/repositories"})
    assert location(r) == "/console/repositories"
    cookie = set_cookies(r)[LANG]
    assert cookie["value"] == "zh-CN" and cookie["path"] == "/" and int(cookie["max-age"]) > 30 * 86400
    page = console.get("/console/repositories").text
    assert html_lang(page) == "zh-CN"
    assert "镜像仓库" in page
    r = console.get("/console/lang/en", params={"next": "/console/namespaces"})
    assert location(r) == "/console/namespaces"
    assert html_lang(console.get("/console/repositories").text) == "en"


def test_language_from_accept_language(app: Starlette, registry: TestClient) -> None:
    chinese = console_client(app, **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page = chinese.get("/console/login").text
    assert html_lang(page) == "zh-CN"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in page)
    assert html_lang(console_client(app, **{"Accept-Language": "en-US,en;q=0.9"}).get("/console/login").text) == "en"
    assert html_lang(console_client(app, **{"Accept-Language": "fr"}).get("/console/login").text) == "en"
    assert html_lang(console_client(app, **{"Accept-Language": ";;;,q=x"}).get("/console/login").text) == "en"
    # the cookie wins over the header
    both = console_client(app, **{"Accept-Language": "zh-CN", "Cookie": f"{LANG}=en"})
    assert html_lang(both.get("/console/login").text) == "en"


def test_unknown_languages_and_foreign_next_are_ignored(app: Starlette, console: TestClient) -> None:
    r = console.get("/console/lang/xx", params={"next": "/console/namespaces"})
    assert location(r) == "/console/namespaces"
    assert LANG not in set_cookies(r)
    assert html_lang(console.get("/console/repositories").text) == "en"
    for evil in ("https://evil.com", "//evil.com", "/\\evil.com", "javascript:alert(1)"):
        r = console.get("/console/lang/zh-CN", params={"next": evil})
        assert location(r) == "/console/repositories", evil
    forged = console_client(app, Cookie=f"{SESSION}={console.cookies[SESSION]}; {LANG}=xx")
    assert html_lang(forged.get("/console/repositories").text) == "en"  # an unknown language changes nothing


# -- responses -------------------------------------------------------------------------------------------------
def test_security_headers_on_console_pages(app: Starlette, console: TestClient) -> None:
    anon = console_client(app)
    responses = [console.get("/console/repositories"), console.get("/console/repo/none/none"),
                 console.get("/console/lang/en"), anon.get("/console/login"), anon.get("/console/audit"),
                 console.post("/console/namespaces", data={"name": "x"})]
    assert [r.status_code for r in responses] == [200, 404, 303, 200, 303, 403]
    for r in responses:
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert re.fullmatch(r"app;dur=\d+(\.\d+)?", r.headers["server-timing"])
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    assert responses[0].headers["content-type"].startswith("text/html")


def test_static_files(app: Starlette, registry: TestClient) -> None:
    anon = console_client(app)
    for name in ("console.css", "console.js", "htmx.min.js"):
        assert anon.get(f"/console/static/{name}").status_code == 200, name
    assert anon.get("/console/static/nothing.css").status_code == 404
    assert anon.get("/console/static/../views/auth.py").status_code == 404


def test_flashes_are_shown_once_even_on_error_pages(console: TestClient) -> None:
    r = post(console, "/console/namespaces", name="Not A Valid Name")
    assert r.status_code == 303
    page = console.get("/console/namespaces/nope")  # the next page is an error page: it shows the flash
    assert page.status_code == 404 and 'data-testid="flash-error"' in page.text
    assert 'data-testid="flash-error"' not in console.get("/console/namespaces").text


def test_htmx_partials_leave_flashes_for_the_next_page(console: TestClient) -> None:
    post(console, "/console/namespaces", name="Not A Valid Name")
    partial = console.get("/console/repositories", params={"q": "x"},
                          headers={"HX-Request": "true", "HX-Target": "repo-list"})
    assert partial.status_code == 200 and "flash" not in partial.text
    assert 'data-testid="flash-error"' in console.get("/console/namespaces").text
