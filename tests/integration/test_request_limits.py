"""Limits on what an unauthenticated request can make the server do: the token endpoint refuses
more than MAX_SCOPES scopes (or an overlong one) with a 400 before any look-up, and the console
enforces its form limit while reading the body, whether or not it says its length."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.core.scopes import MAX_SCOPE_LENGTH, MAX_SCOPES
from tests.conftest import ADMIN, basic
from tests.integration.console_helpers import (  # noqa: F401  (app, registry are fixtures)
    app, console_client, csrf_of, registry,
)


@pytest.fixture
def lookups(services: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = services.namespaces.facts

    def facts(name: str) -> Any:
        seen.append(name)
        return real(name)

    monkeypatch.setattr(services.namespaces, "facts", facts)
    return seen


def scopes(n: int) -> str:
    return " ".join(f"repository:a/{i}:pull" for i in range(n))


def test_a_token_request_with_too_many_scopes_is_refused(anon_client: TestClient, lookups: list[str]) -> None:
    form = urlencode({"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1], "service": "dockyard",
                      "scope": scopes(2000)})
    assert len(form) < 64 << 10  # within the form limit: the scopes are what is refused
    r = anon_client.post("/auth/token", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"
    assert f"more than {MAX_SCOPES} scopes" in r.json()["error_description"]
    r = anon_client.get("/auth/token", params=[("service", "dockyard")] + [("scope", f"repository:a/b{i}:pull") for i in range(MAX_SCOPES + 1)])
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": f"repository:{'a' * MAX_SCOPE_LENGTH}:pull"})
    assert r.status_code == 400 and "longer than" in r.json()["error_description"]
    assert lookups == []
    # the limit itself is allowed
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": scopes(MAX_SCOPES)}, headers=basic(*ADMIN))
    assert r.status_code == 200
    assert len(lookups) == MAX_SCOPES


def test_the_console_form_limit_holds_for_chunked_bodies(app: Starlette, registry: TestClient) -> None:
    client = console_client(app)
    page = client.get("/console/login")
    token = csrf_of(page.text)

    def chunked() -> Iterator[bytes]:  # no Content-Length: sent with Transfer-Encoding: chunked
        yield f"username={ADMIN[0]}&password={ADMIN[1]}&csrf={token}&pad=".encode()
        for _ in range(64):
            yield b"x" * (16 << 10)

    r = client.post("/console/login", content=chunked(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert "dockyard_session" not in client.cookies
    # a chunked form within the limit is read as usual
    r = client.post("/console/login", content=iter([f"username={ADMIN[0]}&password={ADMIN[1]}&csrf={token}".encode()]),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303
