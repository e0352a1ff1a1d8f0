"""The web console (/console) in-process over Starlette's TestClient, on SQLite and PostgreSQL:
logging in and out, the session cookie, CSRF and Origin checks, namespaces and members,
repositories and their addresses, image versions (pushed through /v2), tag deletion and the audit
log, access credentials, languages, response headers and odd URLs.

Console clients log in through the real login form; a second client on the same app pushes images
with Basic credentials. Any 5xx answer fails the test (`no_server_errors`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.app import build_services, create_app
from dockyard.auth.passwords import hash_password
from dockyard.config import Settings, load_settings
from dockyard.meta.db import utcnow
from dockyard.meta.migrate import upgrade
from dockyard.meta.tables import console_sessions
from dockyard.web.i18n import human_size
from tests.conftest import ADMIN, basic
from tests.integration.helpers import (  # noqa: F401
    OCI_CONFIG,
    OCI_LAYER,
    descriptor,
    dumps,
    image_manifest,
    no_server_errors,
    push_blob,
    push_image,
    push_index,
    put_manifest,
    raw_request,
    sha256,
)

BASE = "http://registry.test"
PASSWORD = "bob-password-1"
SESSION = "dockyard_session"
LANG = "dockyard_lang"
FLASH = "dockyard_flash"
LOGIN_CSRF = "dockyard_login_csrf"


# -- reading pages --------------------------------------------------------------------------------------
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TestIds(HTMLParser):
    """Every element with a data-testid: its attributes and its text (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, Any] | None]] = []
        self.found: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        entry = None
        if "data-testid" in values:
            entry = {"testid": values["data-testid"], "attrs": values, "text": []}
            self.found.append(entry)
        if tag not in _VOID:
            self.stack.append((tag, entry))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for _, entry in self.stack:
            if entry is not None:
                entry["text"].append(data)


def elements(html: str, testid: str) -> list[dict[str, Any]]:
    parser = _TestIds()
    parser.feed(html)
    return [{"attrs": e["attrs"], "text": " ".join("".join(e["text"]).split())}
            for e in parser.found if e["testid"] == testid]


def texts(html: str, testid: str) -> list[str]:
    return [e["text"] for e in elements(html, testid)]


def attr(html: str, testid: str, name: str) -> list[str]:
    return [e["attrs"].get(name, "") for e in elements(html, testid)]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """name -> {"value": …, attribute (lowercase) -> value} of each Set-Cookie header."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        flags = {"value": value}
        for part in rest:
            key, _, val = part.partition("=")
            flags[key.lower()] = val
        out[name] = flags
    return out


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return response.headers["location"]


def flashes(client: TestClient, response: httpx.Response, kind: str) -> list[str]:
    """Follow a redirect and read the flash messages of `kind` on the page it leads to."""
    page = client.get(location(response))
    assert page.status_code == 200, page.text[:500]
    return texts(page.text, f"flash-{kind}")


def refusal(client: TestClient, response: httpx.Response) -> str:
    """Why a form was refused: the error flash on the page it goes back to, or (for something
    that does not exist, which the console shows as a page) the error page's message."""
    if response.status_code == 303:
        errors = flashes(client, response, "error")
        assert len(errors) == 1, errors
        return errors[0]
    assert response.status_code in (403, 404), (response.status_code, response.text[:500])
    return " ".join(texts(response.text, "error-message"))


# -- clients --------------------------------------------------------------------------------------------
def console_client(app: Starlette, **headers: str) -> TestClient:
    """A browser without JavaScript: keeps cookies, does not follow redirects."""
    return TestClient(app, base_url=BASE, follow_redirects=False, headers=headers or None)


def login(client: TestClient, username: str, password: str, next: str = "") -> httpx.Response:
    page = client.get("/console/login")
    assert page.status_code == 200, page.text[:500]
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf": csrf_of(page.text), "next": next})


def logged_in(app: Starlette, username: str, password: str) -> TestClient:
    client = console_client(app)
    r = login(client, username, password)
    assert r.status_code == 303, r.text[:500]
    assert client.cookies.get(SESSION)
    return client


def csrf(client: TestClient) -> str:
    """The session's CSRF token, as every page's forms carry it."""
    page = client.get("/console/credentials")
    assert page.status_code == 200, page.text[:500]
    return csrf_of(page.text)


def post(client: TestClient, path: str, **data: str) -> httpx.Response:
    return client.post(path, data={"csrf": csrf(client), **data})


@pytest.fixture
def app(settings: Settings, services: Any) -> Starlette:
    return create_app(settings, services)


@pytest.fixture
def registry(app: Starlette) -> Iterator[TestClient]:
    """The /v2 API as admin with Basic credentials (and the app's lifespan)."""
    with TestClient(app, base_url=BASE, headers=basic(*ADMIN)) as client:
        yield client


@pytest.fixture
def console(app: Starlette, registry: TestClient) -> TestClient:
    """A console session of the administrator, opened through the login form."""
    return logged_in(app, *ADMIN)


@pytest.fixture
def make_app(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Starlette]]:
    """An app with settings of the test's own (regions, cookie policy), on the test's database.
    Tests using it do not use `settings` / `services`."""
    made: list[Any] = []

    def make(**overrides: Any) -> Starlette:
        s = load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                          uploads={"purge_interval_seconds": 0}, **overrides)
        s.data_dir.mkdir(parents=True, exist_ok=True)
        svc = build_services(s)
        made.append(svc)
        upgrade(svc.db)
        svc.users.create(ADMIN[0], hash_password(ADMIN[1]), is_admin=True)
        return create_app(s, svc)

    yield make
    for svc in made:
        svc.db.dispose()


def add_user(services: Any, name: str = "bob", password: str = PASSWORD) -> None:
    services.users.create(name, hash_password(password))


def make_namespace(console: TestClient, name: str, **fields: str) -> None:
    r = post(console, "/console/namespaces", name=name, **fields)
    assert location(r) == f"/console/namespaces/{name}"


def make_repository(console: TestClient, namespace: str, name: str, **fields: str) -> None:
    r = post(console, "/console/repositories", namespace=namespace, name=name, **fields)
    assert location(r) == f"/console/repo/{namespace}/{name}"


def set_member(console: TestClient, namespace: str, username: str, role: str) -> httpx.Response:
    return post(console, f"/console/namespaces/{namespace}/members", username=username, role=role)


def config(arch: str = "amd64", variant: str | None = None, history: list[dict[str, Any]] | None = None,
           **extra: Any) -> bytes:
    """An image config as `docker build` writes one."""
    doc: dict[str, Any] = {"architecture": arch, "os": "linux", "created": "2024-05-01T10:00:00Z",
                           "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
                           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
                           "history": history or [{"created": "2024-05-01T10:00:00Z",
                                                   "created_by": "/bin/sh -c #(nop) ADD file:0123 in / "}],
                           **extra}
    if variant:
        doc["variant"] = variant
    return dumps(doc)


def tags_of(registry: TestClient, repo: str) -> list[str]:
    r = registry.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200, r.text
    return list(r.json()["tags"] or [])


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
    services.activity.flush()  # the push's audit events are written now, not during the attempts
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

    services.activity.flush()
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


# -- namespaces -------------------------------------------------------------------------------------------
def test_namespace_lifecycle(console: TestClient, services: Any) -> None:
    add_user(services)
    r = post(console, "/console/namespaces", name="team", description="The team", public="")
    assert location(r) == "/console/namespaces/team"
    assert flashes(console, r, "ok") == ["Namespace team created."]
    page = console.get("/console/namespaces").text
    assert attr(page, "namespace-row", "data-name") == ["team"]
    assert "The team" in texts(page, "namespace-row")[0]

    r = post(console, "/console/namespaces/team", description="Our images", public="on", auto_create="on")
    assert flashes(console, r, "ok") == ["Namespace team saved."]
    ns = services.namespaces.get("team")
    assert ns.description == "Our images" and ns.public and ns.auto_create
    show = console.get("/console/namespaces/team").text
    assert "Our images" in show and "public" in show

    r = set_member(console, "team", "bob", "developer")
    assert flashes(console, r, "ok") == ["bob is now developer of team."]
    assert attr(console.get("/console/namespaces/team").text, "member-row", "data-user") == ["admin", "bob"]
    r = set_member(console, "team", "bob", "guest")
    assert location(r) == "/console/namespaces/team"
    assert {m.username: m.role for m in services.namespaces.members("team")} == {"admin": "owner", "bob": "guest"}
    r = set_member(console, "team", "nobody", "guest")
    assert "nobody" in refusal(console, r)
    r = set_member(console, "team", "bob", "emperor")
    assert flashes(console, r, "error")
    assert {m.username: m.role for m in services.namespaces.members("team")} == {"admin": "owner", "bob": "guest"}

    r = post(console, "/console/namespaces/team/members/bob/remove")
    assert flashes(console, r, "ok") == ["bob removed from team."]
    assert attr(console.get("/console/namespaces/team").text, "member-row", "data-user") == ["admin"]
    r = post(console, "/console/namespaces/team/members/admin/remove")  # the last owner stays
    assert flashes(console, r, "error")
    assert [m.username for m in services.namespaces.members("team")] == ["admin"]

    r = post(console, "/console/namespaces/team/delete")
    assert location(r) == "/console/namespaces"
    assert flashes(console, r, "ok") == ["Namespace team deleted with 0 repositories."]
    assert services.namespaces.get("team") is None
    assert console.get("/console/namespaces/team").status_code == 404


@pytest.mark.parametrize("name", ["Bad Name", "UPPER", "-dash", "a/b", "", "x" * 300, "名字"])
def test_invalid_namespace_name_is_an_error_flash(console: TestClient, services: Any, name: str) -> None:
    r = post(console, "/console/namespaces", name=name)
    errors = flashes(console, r, "error")
    assert len(errors) == 1 and errors[0]
    assert attr(console.get("/console/namespaces").text, "namespace-row", "data-name") == []
    assert services.namespaces.list(None, None, 10) == []


def test_duplicate_namespace_is_an_error_flash(console: TestClient) -> None:
    make_namespace(console, "team")
    r = post(console, "/console/namespaces", name="team")
    assert flashes(console, r, "error") == ["namespace 'team' exists already"]


def test_errors_go_back_to_the_page_of_the_form(console: TestClient) -> None:
    r = console.post("/console/namespaces", data={"name": "BAD", "csrf": csrf(console)},
                     headers={"Referer": f"{BASE}/console/namespaces?after=a"})
    assert location(r) == "/console/namespaces?after=a"
    r = console.post("/console/namespaces", data={"name": "BAD", "csrf": csrf(console)},
                     headers={"Referer": "https://evil.com/console/namespaces"})
    assert location(r) == "/console/repositories"


def test_user_text_is_escaped(console: TestClient) -> None:
    make_namespace(console, "team", description="<script>alert(1)</script>")
    make_repository(console, "team", "app", summary='"><img src=x onerror=alert(1)>')
    for path in ("/console/namespaces", "/console/namespaces/team", "/console/repositories", "/console/repo/team/app"):
        page = console.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page, path


# -- what a developer sees --------------------------------------------------------------------------------
@pytest.fixture
def bob(app: Starlette, console: TestClient, services: Any) -> TestClient:
    """bob, developer of the private namespace `team` (with team/app and a robot); `secret` is
    another private namespace (with secret/app) bob is not a member of."""
    add_user(services)
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    assert location(set_member(console, "team", "bob", "developer"))
    robot = post(console, "/console/namespaces/team/robots", robot="ci", action_pull="on")
    assert robot.status_code == 200 and texts(robot.text, "robot-secret")
    make_namespace(console, "secret")
    make_repository(console, "secret", "app")
    return logged_in(app, "bob", PASSWORD)


def test_robot_and_registry_secrets_do_not_open_the_console(app: Starlette, console: TestClient) -> None:
    make_namespace(console, "team")
    created = post(console, "/console/namespaces/team/robots", robot="ci", action_pull="on", action_push="on")
    secret = texts(created.text, "robot-secret")[0]
    assert secret.startswith("dkr_")
    assert v2_status(app, "robot$team+ci", secret) == 200
    assert login(console_client(app), "robot$team+ci", secret).status_code == 401


def test_developer_sees_only_their_namespaces(bob: TestClient) -> None:
    assert attr(bob.get("/console/namespaces").text, "namespace-row", "data-name") == ["team"]
    assert attr(bob.get("/console/repositories").text, "repository-row", "data-name") == ["team/app"]
    found = bob.get("/console/repositories", params={"q": "app"}).text
    assert attr(found, "repository-row", "data-name") == ["team/app"]
    for path in ("/console/namespaces/secret", "/console/repo/secret/app", "/console/repo/secret/app/-/versions",
                 "/console/repo/secret/app/-/settings", "/console/repo/secret/app/-/versions/latest"):
        r = bob.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "secret/app" not in "".join(texts(r.text, "repository-row"))
    assert bob.get("/console/repo/team/app").status_code == 200


def test_developer_does_not_see_or_manage_robots(bob: TestClient, services: Any) -> None:
    page = bob.get("/console/namespaces/team").text
    assert elements(page, "robot-row") == [] and elements(page, "robot-create") == []
    assert "robot$team+ci" not in page
    assert elements(page, "namespace-delete") == [] and elements(page, "member-set") == []
    r = post(bob, "/console/namespaces/team/robots", robot="evil", action_pull="on", action_push="on")
    assert flashes(bob, r, "error")
    assert [r.name for r in services.credentials.list_robots("team")] == ["ci"]
    for action in ("rotate", "disable", "delete"):
        r = post(bob, f"/console/namespaces/team/robots/ci/{action}", disabled="true")
        assert r.status_code in (303, 403, 404), (action, r.status_code)
        assert "dkr_" not in r.text
    robot = services.credentials.get_robot("team", "ci")
    assert robot is not None and not robot.disabled and robot.rotated_at is None


def test_developer_cannot_delete_a_repository_or_the_namespace(bob: TestClient, console: TestClient,
                                                               services: Any) -> None:
    r = post(bob, "/console/repo/team/app/-/delete")
    assert flashes(bob, r, "error")
    assert console.get("/console/repo/team/app").status_code == 200
    r = post(bob, "/console/namespaces/team/delete")
    assert flashes(bob, r, "error")
    assert services.namespaces.get("team") is not None
    r = set_member(bob, "team", "bob", "owner")  # nor promote themselves
    assert flashes(bob, r, "error")
    assert {m.username: m.role for m in services.namespaces.members("team")}["bob"] == "developer"
    # nor another namespace's repository
    assert refusal(bob, post(bob, "/console/repo/secret/app/-/delete"))
    assert console.get("/console/repo/secret/app").status_code == 200


def test_developer_creates_and_edits_repositories(bob: TestClient) -> None:
    make_repository(bob, "team", "tool", summary="by bob")
    assert location(post(bob, "/console/repo/team/tool/-/settings", summary="changed")) == \
        "/console/repo/team/tool/-/settings"
    r = post(bob, "/console/repositories", namespace="secret", name="sneaky")
    assert refusal(bob, r)
    assert bob.get("/console/repo/secret/sneaky").status_code == 404


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


# -- image versions -----------------------------------------------------------------------------------------
def version_rows(html: str) -> list[str]:
    return attr(html, "version-row", "data-tag")


def row_blocks(html: str) -> dict[str, str]:
    return {re.search(r'data-tag="([^"]+)"', block).group(1): block  # type: ignore[union-attr]
            for block in re.findall(r'<tr data-testid="version-row".*?</tr>', html, re.S)}


def test_versions_list_tags_with_digest_size_and_platforms(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    amd64_config, arm64_config = config("amd64"), config("arm64", "v8")
    amd64, amd64_body = push_image(registry, "team/app", "1.0", config=amd64_config, layer=b"amd64 layer")
    arm64, arm64_body = push_image(registry, "team/app", None, config=arm64_config, layer=b"arm64 layer bytes")
    multi, multi_body = push_index(registry, "team/app", "multi", [(amd64, amd64_body), (arm64, arm64_body)])

    page = console.get("/console/repo/team/app/-/versions")
    assert page.status_code == 200
    assert sorted(version_rows(page.text)) == ["1.0", "multi"]
    assert texts(page.text, "versions-total") == ["2 tags"]
    rows = row_blocks(page.text)
    assert attr(rows["1.0"], "version-digest", "title") == [amd64]
    assert texts(rows["1.0"], "version-digest") == [f"sha256:{amd64[7:19]}"]
    amd64_size = len(amd64_body) + len(amd64_config) + len(b"amd64 layer")
    arm64_size = len(arm64_body) + len(arm64_config) + len(b"arm64 layer bytes")
    assert texts(rows["1.0"], "version-size") == [human_size(amd64_size)]
    assert texts(rows["1.0"], "platform") == ["linux/amd64"]
    assert attr(rows["multi"], "version-digest", "title") == [multi]
    assert texts(rows["multi"], "version-size") == [human_size(len(multi_body) + amd64_size + arm64_size)]
    assert texts(rows["multi"], "platform") == [f"linux/amd64 {human_size(amd64_size)}",
                                                f"linux/arm64/v8 {human_size(arm64_size)}"]
    assert "multi-arch" in rows["multi"] and "multi-arch" not in rows["1.0"]
    assert elements(page.text, "tag-delete")  # the administrator may delete tags


def test_versions_sort_and_pages(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    names = [f"t{i:02d}" for i in range(45)]
    for name in names:
        push_image(registry, "team/app", name, config=config(), layer=b"shared layer")
    url = "/console/repo/team/app/-/versions"
    get = lambda **params: console.get(url, params=params)  # noqa: E731

    asc = get(sort="name", order="asc", per_page="20")
    assert version_rows(asc.text) == names[:20]
    assert texts(asc.text, "versions-total") == ["45 tags"]
    assert texts(asc.text, "page-3") == ["3"] and not elements(asc.text, "page-4")
    assert "Page 1 of 3" in asc.text
    assert version_rows(get(sort="name", order="desc", per_page="20").text) == names[::-1][:20]
    assert version_rows(get(sort="name", per_page="20").text) == names[:20]  # name sorts ascending by default
    assert version_rows(get(sort="name", order="asc", per_page="20", page="2").text) == names[20:40]
    last = get(sort="name", order="asc", per_page="20", page="3").text
    assert version_rows(last) == names[40:]
    assert len(version_rows(last)) == 5
    assert "Page 3 of 3" in last
    assert version_rows(get(sort="name", order="desc", per_page="20", page="3").text) == names[::-1][40:]
    assert version_rows(get(sort="name", order="asc", per_page="20", page="9").text) == names[40:]  # clamped
    assert version_rows(get(sort="name", order="asc", per_page="20", page="0").text) == names[:20]
    assert len(version_rows(get(sort="name").text)) == 45  # 50 a page by default
    assert len(version_rows(get(per_page="7").text)) == 45  # not an offered page size: the default
    for sort in ("pushed", "pulled", "size"):
        assert sorted(version_rows(get(sort=sort, per_page="50").text)) == names

    found = get(q="t1", sort="name")
    assert version_rows(found.text) == [f"t1{i}" for i in range(10)]
    assert texts(found.text, "versions-total") == ["10 tags"]
    assert version_rows(get(q="T4", sort="name", order="desc").text) == ["t44", "t43", "t42", "t41", "t40"]
    nothing = get(q="zzz").text
    assert version_rows(nothing) == [] and "No tags match." in nothing

    partial = console.get(url, params={"sort": "name", "order": "desc", "q": "t2"},
                          headers={"HX-Request": "true", "HX-Target": "versions"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and "<table" in partial.text
    assert version_rows(partial.text) == [f"t2{i}" for i in range(9, -1, -1)]


@pytest.mark.parametrize("params", [{"sort": "evil"}, {"sort": "name; drop table tags"}, {"order": "sideways"},
                                    {"sort": "name", "order": "ASC"}, {"sort": "x" * 5000}])
def test_versions_bad_sort_is_a_4xx_page(console: TestClient, registry: TestClient, params: dict[str, str]) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    r = console.get("/console/repo/team/app/-/versions", params=params)
    assert 400 <= r.status_code < 500, r.status_code
    assert texts(r.text, "error-message")
    assert "<html" in r.text


def test_version_page_of_an_image(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    history = [
        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc123 in / "},
        {"created": "2024-05-01T10:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]', "empty_layer": True},
        {"created": "2024-05-01T10:00:02Z", "created_by": "RUN /bin/sh -c apk add --no-cache curl # buildkit"},
    ]
    cfg = config("arm64", "v8", history=history, author="Jane <jane@example.com>",
                 config={"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin"],
                         "Labels": {"org.opencontainers.image.title": "app"}})
    layer1, layer2 = b"base layer", b"curl layer"
    push_blob(registry, "team/app", cfg)
    push_blob(registry, "team/app", layer1)
    push_blob(registry, "team/app", layer2)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, layer1), descriptor(OCI_LAYER, layer2)],
                          annotations={"org.opencontainers.image.source": "https://example.com/app"})
    assert put_manifest(registry, "team/app", "1.0", body).status_code == 201
    digest = sha256(body)

    for reference in ("1.0", digest):
        page = console.get(f"/console/repo/team/app/-/versions/{reference}")
        assert page.status_code == 200, page.text[:500]
        assert texts(page.text, "detail-digest") == [digest]
        assert texts(page.text, "detail-platform") == ["linux/arm64/v8"]
        assert texts(page.text, "detail-size") == [human_size(len(body) + len(cfg) + len(layer1) + len(layer2))]
        assert len(elements(page.text, "layer-row")) == 2
        assert texts(page.text, "layer-command") == ["/bin/sh -c #(nop) ADD file:abc123 in /",
                                                     "RUN /bin/sh -c apk add --no-cache curl # buildkit"]
        assert '/bin/sh -c #(nop)  CMD [&#34;/bin/sh&#34;]' in page.text  # the history, escaped
        assert "Jane &lt;jane@example.com&gt;" in page.text
        assert "org.opencontainers.image.title" in "".join(texts(page.text, "labels"))
        assert "https://example.com/app" in "".join(texts(page.text, "annotations"))
        assert not elements(page.text, "child-platform")


def test_version_page_of_an_index(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    children = [push_image(registry, "team/app", None, config=config(arch), layer=f"{arch} layer".encode())
                for arch in ("amd64", "arm64", "s390x")]
    digest, _ = push_index(registry, "team/app", "multi", children)
    page = console.get("/console/repo/team/app/-/versions/multi")
    assert page.status_code == 200
    assert texts(page.text, "detail-digest") == [digest]
    platforms = elements(page.text, "child-platform")
    assert [p["text"].split()[0] for p in platforms] == ["linux/amd64", "linux/arm64", "linux/s390x"]
    for (child, _), shown in zip(children, platforms, strict=True):
        assert f"/console/repo/team/app/-/versions/{child.replace(':', '%3A')}" in page.text
        assert f"sha256:{child[7:19]}" in shown["text"]
    assert not elements(page.text, "layer-row") and not elements(page.text, "detail-platform")
    # a child, by digest
    child = console.get(f"/console/repo/team/app/-/versions/{children[1][0]}")
    assert texts(child.text, "detail-platform") == ["linux/arm64"]


def test_unknown_versions_are_404_and_bad_references_4xx(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    assert console.get("/console/repo/team/app/-/versions/nope").status_code == 404
    assert console.get("/console/repo/team/app/-/versions/sha256:" + "a" * 64).status_code == 404
    assert console.get("/console/repo/team/nothing/-/versions").status_code == 404
    assert console.get("/console/repo/team/nothing/-/versions/v1").status_code == 404
    assert console.get("/console/repo/team/app/-/nowhere").status_code == 404
    for bad in ("sha256:zzz", "bad!tag", "-v1", "x" * 200, "sha256:" + "A" * 64):
        r = console.get(f"/console/repo/team/app/-/versions/{bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)


def test_delete_a_tag(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    for tag in ("v1", "v2", "v3"):
        push_image(registry, "team/app", tag, config=config())
    r = post(console, "/console/repo/team/app/-/tags/v1/delete")
    assert location(r) == "/console/repo/team/app/-/versions"
    assert flashes(console, r, "ok") == ["Tag v1 deleted."]
    assert tags_of(registry, "team/app") == ["v2", "v3"]
    assert registry.get("/v2/team/app/manifests/v1").status_code == 404
    assert sorted(version_rows(console.get("/console/repo/team/app/-/versions").text)) == ["v2", "v3"]
    # back to the page the form was on, if it is this repository's versions list
    back = "/console/repo/team/app/-/versions?sort=name&order=desc"
    assert location(post(console, "/console/repo/team/app/-/tags/v2/delete", back=back)) == back
    assert location(post(console, "/console/repo/team/app/-/tags/v3/delete", back="https://evil.com/")) == \
        "/console/repo/team/app/-/versions"
    assert tags_of(registry, "team/app") == []
    # an unknown tag: back to the form's page with the reason (a POST's errors are flashed, never a dead end)
    assert post(console, "/console/repo/team/app/-/tags/v1/delete").status_code == 303

    audit = console.get("/console/audit", params={"action": "tag.delete"}).text
    rows = elements(audit, "audit-row")
    assert [r["attrs"]["data-action"] for r in rows] == ["tag.delete"] * 3
    assert all("team/app" in r["text"] and "admin" in r["text"] for r in rows)
    assert ["v3" in rows[0]["text"], "v2" in rows[1]["text"], "v1" in rows[2]["text"]] == [True] * 3  # newest first
    everything = attr(console.get("/console/audit").text, "audit-row", "data-action")
    assert "namespace.create" in everything and everything.count("tag.delete") == 3
    assert attr(console.get("/console/audit", params={"action": "namespace."}).text, "audit-row",
                "data-action") == ["namespace.create"]


# -- access credentials -------------------------------------------------------------------------------------
def v2_status(app: Starlette, user: str, password: str) -> int:
    return TestClient(app, base_url=BASE, headers=basic(user, password)).get("/v2/").status_code


def test_fixed_password(app: Starlette, console: TestClient) -> None:
    assert console.get("/console/credentials").status_code == 200
    r = post(console, "/console/credentials/password", password="fixed-password-1", confirm="fixed-password-2")
    assert flashes(console, r, "error") == ["The two passwords differ."]
    assert v2_status(app, "admin", "fixed-password-1") == 401
    r = post(console, "/console/credentials/password", password="short", confirm="short")
    assert flashes(console, r, "error")
    r = post(console, "/console/credentials/password", password="fixed-password-1", confirm="fixed-password-1")
    assert location(r) == "/console/credentials"
    assert flashes(console, r, "ok") == ["The fixed password is set."]
    assert v2_status(app, "admin", "fixed-password-1") == 200
    r = post(console, "/console/credentials/password", remove="1")
    assert flashes(console, r, "ok") == ["The fixed password is removed."]
    assert v2_status(app, "admin", "fixed-password-1") == 401
    assert v2_status(app, *ADMIN) == 200


def test_fixed_password_does_not_open_the_console(app: Starlette, console: TestClient) -> None:
    post(console, "/console/credentials/password", password="fixed-password-1", confirm="fixed-password-1")
    assert login(console_client(app), "admin", "fixed-password-1").status_code == 401


def test_temporary_password(app: Starlette, console: TestClient) -> None:
    r = post(console, "/console/credentials/temp", ttl_minutes="30", description="laptop")
    assert r.status_code == 200
    secret = texts(r.text, "temp-secret")
    assert len(secret) == 1 and secret[0].startswith("dkt_")
    password = secret[0]
    assert texts(r.text, "flash-ok") == ["Temporary password created. Copy it now: it is shown only once."]
    assert "docker login --username=admin 127.0.0.1:5000" in r.text
    page = console.get("/console/credentials").text
    assert password not in page  # shown once
    assert texts(page, "temp-status") == ["active"]
    assert "laptop" in "".join(texts(page, "temp-row"))
    temp_id = attr(page, "temp-row", "data-id")[0]
    assert password.startswith(f"dkt_{temp_id}_")

    assert v2_status(app, "admin", password) == 200
    assert login(console_client(app), "admin", password).status_code == 401  # not for the console

    r = post(console, f"/console/credentials/temp/{temp_id}/revoke")
    assert location(r) == "/console/credentials"
    assert flashes(console, r, "ok") == ["Temporary password revoked."]
    page = console.get("/console/credentials").text
    assert texts(page, "temp-status") == ["revoked"]
    assert not elements(page, "temp-revoke")
    assert v2_status(app, "admin", password) == 401


def test_temporary_password_errors(console: TestClient) -> None:
    for minutes in ("abc", "-5", "0", "99999999", "1.5"):
        r = post(console, "/console/credentials/temp", ttl_minutes=minutes)
        assert flashes(console, r, "error"), minutes
    r = post(console, "/console/credentials/temp", ttl_minutes="30", description="x" * 300)
    assert flashes(console, r, "error")
    assert elements(console.get("/console/credentials").text, "temp-row") == []
    # a POST's errors are flashed on the page it came from (303); a malformed id matches no route (404)
    for temp_id in ("0" * 32, "nope", "../../x", "a" * 500):
        assert post(console, f"/console/credentials/temp/{temp_id}/revoke").status_code in (303, 404), temp_id


def test_temporary_password_default_ttl(console: TestClient) -> None:
    r = post(console, "/console/credentials/temp")
    assert r.status_code == 200 and texts(r.text, "temp-secret")
    assert 'name="ttl_minutes" inputmode="numeric" value="60"' in console.get("/console/credentials").text


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
    services.activity.flush()
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
