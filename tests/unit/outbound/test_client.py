"""outbound/client.py: URL checks, every resolved address checked, the connection pinned to the
checked address (DNS rebinding), no redirects, bounded answers and time. Names are resolved by a
patched socket.getaddrinfo; requests go to a receiver on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.outbound.client import Failed, OutboundClient, Refused
from tests.webhook_receiver import Receiver

LOOPBACK = ["127.0.0.0/8"]
REAL_GETADDRINFO = socket.getaddrinfo


def _info(address: str, port: int) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return (family, socket.SOCK_STREAM, 6, "", sockaddr)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[list[str]]]]:
    """Names in this dict resolve to their next answer (the last one repeats); lookups are counted
    in `dns["calls"]`. Other names (IP literals: what the pinned connection looks up) resolve as usual."""
    answers: dict[str, Any] = {"calls": []}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in answers:
            answers["calls"].append(name)
            queue = answers[name]
            current = queue.pop(0) if len(queue) > 1 else queue[0]
            return [_info(a, int(port or 0)) for a in current]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield answers


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/", "only http:// and https://"),
    ("file:///etc/passwd", "only http:// and https://"),
    ("http://user:pw@example.com/", "user:password@"),
    ("http:///path", "no host"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
    ("http://10.0.0.1/", "10.0.0.1 is private"),
    ("http://[::1]:8080/", "::1 is loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, which is loopback"),  # 127.0.0.1 as a number
    ("http://0x7f.1/", "127.0.0.1, which is loopback"),
])
def test_refused_urls(url: str, message: str) -> None:
    with pytest.raises(Refused, match=message.replace(".", r"\.").replace("[", r"\[")):
        OutboundClient().target(url)


def test_a_name_resolving_to_a_private_address_is_refused(dns: dict[str, Any]) -> None:
    dns["deploy.example.com"] = [["10.1.2.3"]]
    with pytest.raises(Refused, match=r"deploy\.example\.com resolves to 10\.1\.2\.3, which is private"):
        OutboundClient().target("https://deploy.example.com/hook")
    dns["hooks.example.com"] = [["93.184.216.34", "127.0.0.1"]]  # one bad address among good ones is enough
    with pytest.raises(Refused, match="127.0.0.1, which is loopback"):
        OutboundClient().target("https://hooks.example.com/")
    dns["v6.example.com"] = [["2606:4700::1", "fd00::5"]]
    with pytest.raises(Refused, match="fd00::5, which is private"):
        OutboundClient().target("https://v6.example.com/")


def test_a_public_name_passes_with_all_its_addresses(dns: dict[str, Any]) -> None:
    dns["ok.example.com"] = [["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]]
    target = OutboundClient().target("https://ok.example.com:8443/x?token=1")
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert target.address == "93.184.216.34" and target.port == 8443 and target.host == "ok.example.com"


def test_a_name_that_does_not_resolve_fails(dns: dict[str, Any]) -> None:
    dns["empty.example.com"] = [[]]
    with pytest.raises(Failed, match="does not resolve"):
        OutboundClient().target("http://empty.example.com/")


def test_the_connection_goes_to_the_checked_address_whatever_dns_says_next(dns: dict[str, Any]) -> None:
    """DNS rebinding: the name is resolved once, checked, and the request goes to that address;
    a second answer (a private address) is never asked for."""
    with Receiver() as hook:
        dns["rebind.example.com"] = [["127.0.0.1"], ["10.0.0.1"]]
        client = OutboundClient(LOOPBACK, timeout=5)
        answer = client.post(f"http://rebind.example.com:{hook.port}/hook?x=1", b'{"a":1}',
                             {"Content-Type": "application/json"})
    assert answer.status == 204
    assert dns["calls"] == ["rebind.example.com"]  # looked up once: httpx connected to the IP itself
    received = hook.requests[0]
    assert received.headers["host"] == f"rebind.example.com:{hook.port}"  # the receiver sees its own name
    assert received.path == "/hook?x=1" and received.body == b'{"a":1}'
    assert received.headers["accept-encoding"] == "identity"


def test_redirects_are_not_followed() -> None:
    with Receiver() as elsewhere, Receiver(redirect_to="") as hook:
        hook.redirect_to = elsewhere.url
        answer = OutboundClient(LOOPBACK, timeout=5).post(hook.url, b"{}", {})
    assert answer.status == 302 and dict(answer.headers)["location"] == elsewhere.url
    assert len(hook.requests) == 1 and elsewhere.requests == []


def test_answers_are_read_up_to_the_limit() -> None:
    with Receiver(status=200, answer=b"x" * 200_000) as hook:
        answer = OutboundClient(LOOPBACK, timeout=5, max_body=1000).post(hook.url, b"{}", {})
    assert answer.status == 200 and answer.truncated and answer.body == b"x" * 1000


def test_a_slow_receiver_times_out() -> None:
    with Receiver(delay=1.5) as hook:
        with pytest.raises(Failed, match="no answer from 127.0.0.1 within 0.3 s"):
            OutboundClient(LOOPBACK, timeout=0.3).post(hook.url, b"{}", {})


def test_nothing_listening_is_a_failure_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Failed, match="request to 127.0.0.1 failed"):
        OutboundClient(LOOPBACK, timeout=2).post(f"http://127.0.0.1:{port}/", b"{}", {})


def test_the_check_is_made_again_when_posting_a_url() -> None:
    with Receiver() as hook:
        with pytest.raises(Refused, match="loopback"):
            OutboundClient(timeout=2).post(hook.url, b"{}", {})
        assert hook.requests == []
