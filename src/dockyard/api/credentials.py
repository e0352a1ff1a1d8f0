"""What the HTTP edges (/v2, /auth/token, /api/v1) read from a request to identify a caller."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

from starlette.requests import Request
from starlette.types import Scope


def basic_credentials(value: str) -> tuple[str, str] | None:
    """(username, password) from the part after `Basic `, or None when it is malformed
    (not base64, not UTF-8, no ':' or an empty user name)."""
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII; UnicodeDecodeError is one too
        return None
    return (username, password) if sep and username else None


def client_address(request: Request) -> str | None:
    """The caller's address: the peer, or what a trusted proxy said it is (see apply_forwarded,
    which the application runs on every request before any edge sees it)."""
    return request.client.host if request.client else None


# A host name (letters, digits, '-', '_', '.') or a bracketed IPv6 address, with an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def request_host(request: Request, fallback: str) -> str:
    """The Host the client asked for when it is a well-formed HOST[:PORT], else `fallback`: the
    value ends up in headers and URLs (the challenge's realm), where quotes, commas, spaces or a
    path smuggled in through Host must not."""
    host = request.headers.get("host", "")
    return host if _HOST.fullmatch(host) else fallback


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    """`server.trusted_proxies` as networks (a bare address is a /32 or /128); raises ValueError."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]) -> bool:
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address.version == n.version and address in n for n in proxies)


def apply_forwarded(scope: Scope, proxies: tuple[Network, ...]) -> None:
    """When the peer is a trusted proxy, make the ASGI scope tell the truth about the client:
    `client` becomes the right-most address of X-Forwarded-For that is not itself a trusted proxy
    (the ones left of it are whatever the client chose to send), and `scheme` the proxy's
    X-Forwarded-Proto. From any other peer both headers are ignored, so they cannot be forged.
    Done once for the whole application, so every edge (/v2, /auth/token, /api/v1, the console)
    sees the same client, and `request.url.scheme` is https behind a TLS proxy."""
    peer = scope.get("client")
    peer_address = _address(peer[0]) if peer else None
    if peer_address is None or not _trusted(peer_address, proxies):
        return
    forwarded_for: list[str] = []
    proto = None
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            forwarded_for.extend(value.decode("latin-1").split(","))
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()  # the nearest proxy's word
    client = None
    for hop in reversed(forwarded_for):
        address = _address(hop)
        if address is None:
            break  # garbage: keep the last address a trusted hop vouched for
        client = address
        if not _trusted(address, proxies):
            break
    if client is not None:
        scope["client"] = (str(client), 0)
    if proto in ("http", "https"):
        scope["scheme"] = proto
