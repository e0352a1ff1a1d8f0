"""Access credentials in the web console: the fixed password and temporary passwords for the
registry, which open /v2 but never the console.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import ADMIN
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    app,
    attr,
    console,
    console_client,
    elements,
    flashes,
    location,
    login,
    post,
    registry,
    texts,
    v2_status,
)
from tests.integration.helpers import no_server_errors  # noqa: F401


# -- access credentials -------------------------------------------------------------------------------------
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
