"""dockyard.web.addresses: the registry's default address, the configured regions' addresses, the
address picker and the `docker` command lines; and the validation of `regions` in the settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from dockyard.config import Settings, load_settings
from dockyard.web.addresses import Address, addresses, commands, default_host, pick

REGIONS = [
    {"name": "cn-hangzhou", "label": "China (Hangzhou)", "public": "registry.cn-hangzhou.example.com",
     "vpc": "registry-vpc.cn-hangzhou.example.com", "internal": "registry-internal.cn-hangzhou.example.com:5000"},
    {"name": "eu-west", "public": "registry.eu-west.example.com"},  # no label, public only
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DOCKYARD_* variable of the caller's shell (or of scripts/test) leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**overrides: object) -> Settings:
    return load_settings(**overrides)


# -- the default address --------------------------------------------------------------------------------
def test_default_host_is_the_public_urls_host() -> None:
    s = settings(server={"public_url": "https://registry.example.com:8443", "listen": "0.0.0.0:5000"})
    assert default_host(s, "browser.example.org") == "registry.example.com:8443"
    assert default_host(s, None) == "registry.example.com:8443"


def test_default_host_is_the_listen_address() -> None:
    s = settings(server={"listen": "10.1.2.3:5000"})
    assert default_host(s, "browser.example.org:80") == "10.1.2.3:5000"  # the Host header does not override it
    assert default_host(s, None) == "10.1.2.3:5000"


@pytest.mark.parametrize("listen", ["0.0.0.0:5000", "[::]:5000"])
def test_default_host_is_the_request_host_when_listening_everywhere(listen: str) -> None:
    s = settings(server={"listen": listen})
    assert default_host(s, "registry.lan:5000") == "registry.lan:5000"
    assert default_host(s, None) == listen  # no Host header: the listen address is all there is


def test_without_regions_there_is_one_default_public_address() -> None:
    s = settings(server={"listen": "127.0.0.1:5000"})
    found = addresses(s, "ignored.example.com")
    assert found == [Address("default:public", "default", "default", "public", "127.0.0.1:5000")]
    assert pick(found, None) == found[0]


# -- configured regions ---------------------------------------------------------------------------------
def test_one_address_per_network_present() -> None:
    s = settings(regions=REGIONS)
    found = addresses(s, "registry.test")
    assert [a.key for a in found] == ["cn-hangzhou:public", "cn-hangzhou:vpc", "cn-hangzhou:internal", "eu-west:public"]
    assert [a.network for a in found] == ["public", "vpc", "internal", "public"]
    assert [a.host for a in found] == [
        "registry.cn-hangzhou.example.com", "registry-vpc.cn-hangzhou.example.com",
        "registry-internal.cn-hangzhou.example.com:5000", "registry.eu-west.example.com"]
    assert {a.region_label for a in found[:3]} == {"China (Hangzhou)"}
    assert found[3].region_label == "eu-west"  # no label: the name
    assert all(a.region == a.key.split(":")[0] for a in found)


def test_regions_replace_the_default_address() -> None:
    s = settings(server={"public_url": "https://registry.example.com"}, regions=REGIONS[1:])
    assert [a.host for a in addresses(s, None)] == ["registry.eu-west.example.com"]


def test_pick_by_key_and_fall_back_to_the_first() -> None:
    found = addresses(settings(regions=REGIONS), None)
    assert pick(found, "cn-hangzhou:vpc") is not None
    assert pick(found, "cn-hangzhou:vpc").host == "registry-vpc.cn-hangzhou.example.com"  # type: ignore[union-attr]
    assert pick(found, "eu-west:public") == found[3]
    for unknown in (None, "", "eu-west:vpc", "nowhere:public", "cn-hangzhou", "x" * 1000):
        assert pick(found, unknown) == found[0]
    assert pick([], "cn-hangzhou:vpc") is None
    assert pick([], None) is None


# -- command lines ----------------------------------------------------------------------------------------
def test_command_lines() -> None:
    address = Address("r:vpc", "r", "R", "vpc", "registry-vpc.example.com:5000")
    cmds = commands(address, "ns/app", "alice")
    assert cmds.login == "docker login --username=alice registry-vpc.example.com:5000"
    assert cmds.tag == "docker tag [ImageId] registry-vpc.example.com:5000/ns/app:[tag]"
    assert cmds.push == "docker push registry-vpc.example.com:5000/ns/app:[tag]"
    assert cmds.pull == "docker pull registry-vpc.example.com:5000/ns/app:[tag]"


def test_command_lines_for_the_default_address() -> None:
    s = settings(server={"listen": "127.0.0.1:5000"})
    cmds = commands(addresses(s, None)[0], "team/deep/app", "bob")
    assert cmds.login == "docker login --username=bob 127.0.0.1:5000"
    assert cmds.tag == "docker tag [ImageId] 127.0.0.1:5000/team/deep/app:[tag]"
    assert cmds.push == "docker push 127.0.0.1:5000/team/deep/app:[tag]"
    assert cmds.pull == "docker pull 127.0.0.1:5000/team/deep/app:[tag]"


# -- settings: regions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("network", ["public", "vpc", "internal"])
@pytest.mark.parametrize("host", [
    "https://registry.example.com",  # a scheme
    "http://registry.example.com:5000",
    "registry.example.com/v2",  # a path
    "registry.example.com:5000/",
    "registry example.com",  # whitespace
    "",
])
def test_a_region_host_with_a_scheme_or_path_is_rejected(network: str, host: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings(regions=[{"name": "r", network: host}])
    assert "regions" in str(info.value)


@pytest.mark.parametrize("region", [
    {"public": "registry.example.com"},  # no name
    {"name": "", "public": "registry.example.com"},
    {"name": "r", "public": "registry.example.com", "private": "x"},  # unknown key
])
def test_other_invalid_regions_are_rejected(region: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings(regions=[region])


def test_region_hosts_with_ports_and_ipv6_are_accepted() -> None:
    s = settings(regions=[{"name": "r", "public": "registry.example.com:443", "vpc": "10.0.0.5:5000",
                           "internal": "[fd00::1]:5000"}])
    assert [a.host for a in addresses(s, None)] == ["registry.example.com:443", "10.0.0.5:5000", "[fd00::1]:5000"]


def test_regions_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_REGIONS", json.dumps(REGIONS))
    s = load_settings()
    assert [r.name for r in s.regions] == ["cn-hangzhou", "eu-west"]
    assert s.regions[0].label == "China (Hangzhou)"
    assert s.regions[0].vpc == "registry-vpc.cn-hangzhou.example.com"
    assert s.regions[1].vpc is None
    assert len(addresses(s, None)) == 4


def test_invalid_regions_from_the_environment_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_REGIONS", json.dumps([{"name": "r", "public": "https://registry.example.com"}]))
    with pytest.raises(ValidationError):
        load_settings()
