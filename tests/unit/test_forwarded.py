"""apply_forwarded: X-Forwarded-For / -Proto believed from trusted proxies only, the client being
the right-most address that is not a trusted proxy."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api.credentials import apply_forwarded, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "192.168.1.1", "fd00::/8"])


def scope(peer: str | None, forwarded_for: list[str] = (), proto: str | None = None) -> dict[str, Any]:  # type: ignore[assignment]
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded_for]
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return {"type": "http", "scheme": "http", "client": (peer, 1234) if peer else None, "headers": headers}


@pytest.mark.parametrize(("peer", "forwarded_for", "client"), [
    ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    ("10.0.0.1", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),  # the left part is the client's word
    ("10.0.0.1", ["198.51.100.1, 203.0.113.9, 192.168.1.1"], "203.0.113.9"),  # a chain of proxies
    ("10.0.0.1", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # several headers
    ("10.0.0.1", ["10.0.0.7, 192.168.1.1"], "10.0.0.7"),  # all trusted: the farthest
    ("10.0.0.1", ["203.0.113.9:4711"], "203.0.113.9"),
    ("10.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
    ("fd00::1", ["2001:db8::2"], "2001:db8::2"),
    ("10.0.0.1", ["garbage, 192.168.1.1"], "192.168.1.1"),  # garbage: the last hop vouched for
    ("10.0.0.1", ["garbage"], "10.0.0.1"),
    ("10.0.0.1", [], "10.0.0.1"),
    ("203.0.113.50", ["198.51.100.1"], "203.0.113.50"),  # not a proxy: ignored
    ("testclient", ["198.51.100.1"], "testclient"),
])
def test_the_client(peer: str, forwarded_for: list[str], client: str) -> None:
    s = scope(peer, forwarded_for)
    apply_forwarded(s, PROXIES)
    assert s["client"][0] == client


def test_the_scheme() -> None:
    for peer, proto, scheme in [("10.0.0.1", "https", "https"), ("10.0.0.1", "http, https", "https"),
                                ("10.0.0.1", "ftp", "http"), ("203.0.113.50", "https", "http")]:
        s = scope(peer, proto=proto)
        apply_forwarded(s, PROXIES)
        assert s["scheme"] == scheme, (peer, proto)


def test_no_peer() -> None:
    s = scope(None, ["198.51.100.1"])
    apply_forwarded(s, PROXIES)
    assert s["client"] is None


def test_bad_settings_are_refused() -> None:
    from pydantic import ValidationError

    from dockyard.config import load_settings

    with pytest.raises(ValidationError):
        load_settings(server={"trusted_proxies": ["not-an-address"]})
    assert load_settings(server={"trusted_proxies": ["10.0.0.0/8", "::1"]}).server.trusted_proxies == ["10.0.0.0/8", "::1"]
