"""Shared by the web console tests (tests/integration/test_console_*.py), which drive /console
in-process over Starlette's TestClient, on SQLite and PostgreSQL.

Console clients log in through the real login form (`logged_in`, the `console` fixture for the
administrator); the `registry` fixture is a second client on the same app that pushes images with
Basic credentials. Pages are read through their data-testid attributes (`elements`, `texts`,
`attr`); a POST's outcome through its redirect (`location`) and the flash messages on the page it
leads to (`flashes`, `refusal`).

Test modules import the fixtures they use, with those they depend on (`app`, `registry`,
`console`, `make_app`), and `no_server_errors` from tests/integration/helpers.py, so that any 5xx
answer fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.app import build_services, create_app
from dockyard.config import Settings, load_settings
from dockyard.meta.migrate import upgrade
from tests.conftest import ADMIN, basic, hashed
from tests.integration.helpers import dumps


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
        svc.users.create(ADMIN[0], hashed(ADMIN[1]), is_admin=True)
        return create_app(s, svc)

    yield make
    for svc in made:
        svc.db.dispose()


def add_user(services: Any, name: str = "bob", password: str = PASSWORD) -> None:
    services.users.create(name, hashed(password))


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


def v2_status(app: Starlette, user: str, password: str) -> int:
    return TestClient(app, base_url=BASE, headers=basic(user, password)).get("/v2/").status_code
