"""Behind a reverse proxy: X-Forwarded-For / X-Forwarded-Proto are believed from
`server.trusted_proxies` only, a stranger's failed logins slow the stranger and not the account's
owner, the session cookie is Secure behind a TLS proxy, and the challenge's realm is never raw Host
header text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import ADMIN, basic
from tests.integration.console_helpers import (  # noqa: F401  (make_app is a fixture)
    BASE, SESSION, console_client, login, make_app, set_cookies,
)

PROXY = "10.1.2.3"


def from_peer(app: ASGIApp, peer: str) -> ASGIApp:
    """The app as reached from `peer` over plain http (TestClient's own peer is the non-address
    "testclient"; its scheme is the base URL's, which the browser side may need to be https)."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (peer, 40000), "scheme": "http"}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def proxied(make_app: Callable[..., Any]) -> Any:
    return make_app(server={"trusted_proxies": ["10.0.0.0/8", "192.168.1.1"]})


def client_of(app: ASGIApp, forwarded_for: str | None, peer: str = PROXY, **headers: str) -> TestClient:
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return TestClient(from_peer(app, peer), base_url=BASE, follow_redirects=False, headers=headers)


def token_status(c: TestClient, user: str, password: str) -> int:
    return c.get("/auth/token", params={"service": "dockyard"}, headers=basic(user, password)).status_code


def test_a_strangers_failures_leave_the_owner_in(proxied: Any) -> None:
    stranger = client_of(proxied, "203.0.113.9")
    codes = [token_status(stranger, "admin", f"wrong-{i}") for i in range(25)]
    codes += [stranger.get("/v2/", headers=basic("admin", f"wrong-{i}")).status_code for i in range(25)]
    codes += [stranger.get("/api/v1/user", headers=basic("admin", f"wrong-{i}")).status_code for i in range(25)]
    codes += [login(console_client(from_peer(proxied, PROXY), **{"X-Forwarded-For": "203.0.113.9"}),
                    "admin", f"wrong-{i}").status_code for i in range(25)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert token_status(stranger, *ADMIN) == 429  # the stranger learns nothing from the right password
    # the owner, elsewhere behind the same proxy, logs in at once everywhere
    owner = client_of(proxied, "198.51.100.7")
    assert token_status(owner, *ADMIN) == 200
    assert owner.get("/v2/", headers=basic(*ADMIN)).status_code == 200
    assert owner.get("/api/v1/user", headers=basic(*ADMIN)).status_code == 200
    browser = console_client(from_peer(proxied, PROXY), **{"X-Forwarded-For": "198.51.100.7"})
    assert login(browser, *ADMIN).status_code == 303
    # a chain of trusted proxies: the right-most untrusted address is the client, whatever the
    # client put in front of it
    chained = client_of(proxied, "198.51.100.7, 203.0.113.9, 192.168.1.1")
    assert token_status(chained, *ADMIN) == 429
    spoofing = client_of(proxied, "198.51.100.7, 203.0.113.9")  # the proxy appended the real one
    assert token_status(spoofing, *ADMIN) == 429


def test_forwarded_headers_from_anyone_else_are_ignored(proxied: Any) -> None:
    # A direct client cannot pose as many clients: X-Forwarded-For from an untrusted peer is ignored.
    for i in range(5):
        assert token_status(client_of(proxied, f"198.51.100.{i}", peer="203.0.113.50"), "admin", "wrong") == 401
    assert token_status(client_of(proxied, "198.51.100.99", peer="203.0.113.50"), *ADMIN) == 429
    assert token_status(client_of(proxied, None, peer="203.0.113.51"), *ADMIN) == 200


def test_the_session_cookie_is_secure_behind_a_tls_proxy(proxied: Any) -> None:
    def session_cookie(peer: str, **headers: str) -> dict[str, str]:
        # The app sees http; the browser sees https (or it would not send back Secure cookies).
        browser = TestClient(from_peer(proxied, peer), base_url="https://registry.test", follow_redirects=False,
                             headers=headers)
        r = login(browser, *ADMIN)
        assert r.status_code == 303, r.text[:300]
        return set_cookies(r)[SESSION]

    assert session_cookie(PROXY, **{"X-Forwarded-Proto": "https"}).get("secure") is not None
    assert session_cookie(PROXY, **{"X-Forwarded-Proto": "http"}).get("secure") is None  # plain http at the proxy
    assert session_cookie("203.0.113.50", **{"X-Forwarded-Proto": "https"}).get("secure") is None  # not a proxy


def realm_of(r: httpx.Response) -> str:
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="'), challenge
    return challenge.split('"')[1]


@pytest.mark.parametrize("host", ['evil.test/x" error="', "a b", "h,realm=x", "", "x" * 300, "[zz]:1"])
def test_the_realm_is_never_raw_host_text(make_app: Callable[..., Any], host: str) -> None:
    app = make_app(server={"listen": "127.0.0.1:5123"})
    r = TestClient(app, base_url=BASE).get("/v2/", headers={"Host": host})
    assert r.status_code == 401
    assert realm_of(r) == "http://127.0.0.1:5123/auth/token"


def test_the_realm_follows_a_valid_host(make_app: Callable[..., Any]) -> None:
    app = make_app(server={"trusted_proxies": [PROXY]})
    c = client_of(app, None, **{"X-Forwarded-Proto": "https"})
    assert realm_of(c.get("/v2/", headers={"Host": "registry.example.com:8443"})) == "https://registry.example.com:8443/auth/token"
    assert realm_of(c.get("/v2/", headers={"Host": "[::1]:5000"})) == "https://[::1]:5000/auth/token"


def test_the_realm_is_the_public_url_when_set(make_app: Callable[..., Any]) -> None:
    public = make_app(server={"public_url": "https://r.example.com/"})
    assert realm_of(TestClient(public, base_url=BASE).get("/v2/", headers={"Host": "evil.test"})) == "https://r.example.com/auth/token"
