"""outbound/guard.py: which addresses requests made for users may reach."""

from __future__ import annotations

import pytest

from dockyard.outbound.guard import AddressPolicy, embedded_ipv4

REFUSED = [
    ("127.0.0.1", "loopback"), ("127.10.20.30", "loopback"), ("0.0.0.0", "unspecified"),
    ("169.254.169.254", "link-local"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.1.1", "private"), ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"), ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"), ("255.255.255.255", "private"), ("240.0.0.1", "private"),
    ("192.0.2.10", "private"), ("198.18.0.1", "private"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"), ("ff02::1", "multicast"), ("fec0::1", "site-local"), ("2001:db8::1", "private"),
    # IPv6 addresses that carry an IPv4 one are judged by it
    ("::ffff:127.0.0.1", "loopback (127.0.0.1)"), ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private (10.0.0.1)"), ("64:ff9b::a00:1", "private (10.0.0.1)"),
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
          "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    reason = AddressPolicy().refusal(address)
    assert reason is not None and why in reason, (address, reason)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert AddressPolicy().refusal(address) is None


def test_allowed_networks_let_their_addresses_through_and_only_them() -> None:
    policy = AddressPolicy(["127.0.0.0/8", "10.20.0.0/16", "fd00:1::/32"])
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("10.20.3.4") is None
    assert policy.refusal("::ffff:127.0.0.1") is None  # the IPv4 address it carries is allowed
    assert policy.refusal("fd00:1:2::3") is None
    assert policy.refusal("10.21.0.1") == "private"
    assert policy.refusal("::1") == "loopback"  # 127.0.0.0/8 says nothing about IPv6
    assert policy.refusal("169.254.169.254") is not None


def test_a_single_address_is_a_network_too() -> None:
    policy = AddressPolicy(["192.168.1.10"])
    assert policy.refusal("192.168.1.10") is None
    assert policy.refusal("192.168.1.11") == "private"


def test_a_malformed_network_is_an_error() -> None:
    with pytest.raises(ValueError):
        AddressPolicy(["10.0.0.0/33"])


def test_embedded_ipv4() -> None:
    import ipaddress

    assert str(embedded_ipv4(ipaddress.ip_address("::ffff:1.2.3.4"))) == "1.2.3.4"
    assert str(embedded_ipv4(ipaddress.ip_address("2002:102:304::"))) == "1.2.3.4"
    assert str(embedded_ipv4(ipaddress.ip_address("64:ff9b::102:304"))) == "1.2.3.4"
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("1.2.3.4")) is None
