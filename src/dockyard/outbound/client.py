"""The one way the registry makes an HTTP request for a user: checked, pinned, bounded.

`OutboundClient.target(url)` checks a URL: http or https only, no user:password@ (parsers disagree
on where such a host ends, a classic way past checks), and the host name resolved once with
`socket.getaddrinfo`, EVERY address it resolves to checked against the `AddressPolicy`
(guard.py): one refused address refuses the URL, so a name cannot smuggle 127.0.0.1 in beside a
public address.

`post` then connects to the checked address itself, never to the name: the request's URL carries
the IP, the `Host` header the original host and port, and TLS the original name as SNI (httpcore's
`sni_hostname`), against which the certificate is verified as usual. A DNS answer that changes
between the check and the connection (DNS rebinding, a TTL of 0) therefore changes nothing.
Environment proxies are ignored (`trust_env=False`: a proxy would resolve the name again), redirects
are never followed (a 3xx is the answer), every step (connect, send, each read) has `timeout`, an
answer still arriving after twice that is cut short (a receiver dripping bytes does not hold a
worker), and at most `max_body` bytes of it are read, undecoded (`Accept-Encoding: identity`, so no
gzip bomb). One connection per request: pinned addresses are never pooled.

Not covered here: what a receiver does with the request (it may call back anywhere itself), and
addresses the administrator allowed on purpose.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from dockyard.outbound.guard import AddressPolicy

MAX_BODY = 64 * 1024  # bytes of an answer read and kept
Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """The URL is not allowed: its scheme or form, or an address its host resolves to."""


class Failed(Exception):
    """The request did not get an answer: the name did not resolve, no connection, a timeout."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: what to connect to, and what to call it."""

    url: httpx.URL
    host: str  # as sent in SNI (IDNA-encoded)
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed

    @property
    def address(self) -> str:
        """The address the request goes to."""
        return self.addresses[0]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # at most max_body bytes
    truncated: bool  # the answer had more


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IP literals, in any form getaddrinfo takes, included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class OutboundClient:
    def __init__(self, allowed_networks: Iterable[str] = (), timeout: float = 10.0, *, max_body: int = MAX_BODY,
                 user_agent: str = "Dockyard", resolver: Resolver | None = None) -> None:
        self.policy = AddressPolicy(allowed_networks)
        self.timeout = timeout
        self.max_body = max_body
        self.user_agent = user_agent
        self.resolver = resolver  # None: `resolve`, looked up at call time (tests patch getaddrinfo)

    def target(self, url: str) -> Target:
        """Check `url` (see the module's docstring); raises Refused, or Failed when the host does
        not resolve."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise Refused(f"not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise Refused("only http:// and https:// URLs are allowed")
        if parsed.userinfo:
            raise Refused("a URL with user:password@ is not allowed; put a token in the path or query instead")
        host = parsed.raw_host.decode("ascii")
        if not host:
            raise Refused("the URL has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = (self.resolver or resolve)(host, port)
        except (OSError, UnicodeError) as exc:
            raise Failed(f"{host} does not resolve: {exc}") from None
        if not addresses:
            raise Failed(f"{host} does not resolve to any address")
        for address in addresses:
            try:
                reason = self.policy.refusal(address)
            except ValueError:
                reason = f"{address} is not an IP address"
            if reason is not None:
                what = f"{address} is" if _is_ip(host) else f"{host} resolves to {address}, which is"
                raise Refused(f"{what} {reason}: the registry does not send requests there (an administrator may "
                              "allow a network with outbound.allowed_networks)")
        return Target(parsed, host, port, tuple(addresses))

    def post(self, target: Target | str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body` to the checked target; raises Refused or Failed (never for an HTTP status)."""
        if isinstance(target, str):
            target = self.target(target)
        pinned = target.url.copy_with(host=target.address)
        sent = {"User-Agent": self.user_agent, **headers, "Host": target.url.netloc.decode("ascii"),
                "Accept-Encoding": "identity"}
        extensions = {} if _is_ip(target.host) or target.url.scheme != "https" else {"sni_hostname": target.host}
        deadline = time.monotonic() + 2 * self.timeout
        try:
            with httpx.Client(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(self.timeout)) as client:
                with client.stream("POST", pinned, content=body, headers=sent, extensions=extensions) as response:
                    kept = bytearray()
                    truncated = False
                    for chunk in response.iter_raw():
                        kept += chunk
                        if len(kept) > self.max_body:
                            truncated = True
                            break
                        if time.monotonic() > deadline:
                            truncated = True  # a receiver that drips its answer does not hold the worker
                            break
                    return Answer(response.status_code, [(k, v) for k, v in response.headers.multi_items()],
                                  bytes(kept[:self.max_body]), truncated)
        except httpx.TimeoutException:
            raise Failed(f"no answer from {target.address} within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise Failed(f"request to {target.address} failed: {exc or type(exc).__name__}") from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
