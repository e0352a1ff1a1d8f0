"""Where clients reach a repository: one address per configured region and network, and the
`docker` command lines for each (as cloud registries' consoles print them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from dockyard.config import RegionSettings, Settings

NETWORKS = ("public", "vpc", "internal")
# How the console names each network (ACR: 公网, 专有网络 VPC, 经典网络); translated where shown.
NETWORK_LABELS = {"public": "Public network", "vpc": "VPC network", "internal": "Internal network"}
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


@dataclass(frozen=True, slots=True)
class Address:
    key: str  # "REGION:NETWORK", the value of the console's address picker
    region: str
    region_label: str
    network: str  # public | vpc | internal
    host: str  # HOST[:PORT] as clients write it in image references


@dataclass(frozen=True, slots=True)
class Commands:
    login: str
    tag: str
    push: str
    pull: str


def default_host(settings: Settings, request_host: str | None) -> str:
    """The registry's own address when no region is configured."""
    if settings.server.public_url:
        return urlsplit(settings.server.public_url).netloc or settings.server.public_url
    if settings.server.host in _WILDCARD_HOSTS and request_host:
        return request_host
    return settings.server.listen


def addresses(settings: Settings, request_host: str | None) -> list[Address]:
    regions = settings.regions or [RegionSettings(name="default", public=default_host(settings, request_host))]
    found = []
    for region in regions:
        for network in NETWORKS:
            host = getattr(region, network)
            if host:
                found.append(Address(f"{region.name}:{network}", region.name, region.label or region.name, network, host))
    return found


def pick(found: list[Address], key: str | None) -> Address | None:
    return next((a for a in found if a.key == key), found[0] if found else None)


def commands(address: Address, repository: str, username: str) -> Commands:
    image = f"{address.host}/{repository}"
    return Commands(
        login=f"docker login --username={username} {address.host}",
        tag=f"docker tag [ImageId] {image}:[tag]",
        push=f"docker push {image}:[tag]",
        pull=f"docker pull {image}:[tag]",
    )
