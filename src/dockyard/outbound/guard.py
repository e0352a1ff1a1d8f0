"""Which addresses a request the registry makes for a user may reach (pure: `ipaddress` only).

A webhook URL (later: a build's clone URL, a proxy cache's upstream) is chosen by a user, and the
request goes out from inside the registry's network. Without a check, a namespace owner could make
the registry call its cloud's metadata service (169.254.169.254, which hands out credentials), the
database on 10.0.0.5 or an admin port on localhost, and read the answers in the delivery log.

So an address is refused unless it is a public unicast address, or lies in one of the networks an
administrator allowed (`outbound.allowed_networks`). Refused: loopback, link-local (the metadata
service), private (RFC 1918, fc00::/7 unique local), shared CGNAT space (100.64.0.0/10),
multicast, unspecified, reserved, documentation and benchmarking ranges, IPv6 site-local, and
anything else Python does not call global. An IPv6 address that carries an IPv4 one is judged by
that IPv4 address, since the packets end up there: IPv4-mapped ::ffff:a.b.c.d and the NAT64
prefix 64:ff9b::/96 by it alone, 6to4 2002::/16 as both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; raises ValueError for a malformed one."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, NAT64), else None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _category(address: Address) -> str | None:
    """Why this one address is not a public unicast address, or None when it is."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata services live there)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared address space (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not a public address"
    return None


class AddressPolicy:
    """Refuses non-public addresses unless they lie in one of `allowed` networks."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = parse_networks(allowed)

    def _allowed(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.allowed)

    def refusal(self, address: Address | str) -> str | None:
        """Why a request may not go to `address`, as what it is ("private", "loopback (127.0.0.1)"
        for an IPv6 address carrying 127.0.0.1), or None when it may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        inner = embedded_ipv4(ip)
        if self._allowed(ip) or (inner is not None and self._allowed(inner)):
            return None
        # An IPv4-mapped or NAT64 address is its IPv4 one (64:ff9b::/96 itself counts as reserved,
        # which would refuse every host on an IPv6-only network with DNS64); a 6to4 address must
        # pass as both.
        translated = isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped is not None or ip in _NAT64)
        for candidate in (inner,) if translated else (ip, inner):
            if candidate is None:
                continue
            reason = _category(candidate)
            if reason is not None:
                return f"{reason} ({inner})" if candidate is inner else reason
        return None
