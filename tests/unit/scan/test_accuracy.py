"""Accuracy of whole scans: image layers the test writes (package databases at known versions)
→ build_inventory → AdvisoryIndex over the vendored real advisory data (tests/data/vulndata),
checked both ways: known vulnerable versions are found with the advisory's exact fixed version
and the right layer; fixed versions, not-affected entries, other releases and packages removed
by a later layer are not reported.

The matcher's own rules are tested in test_matcher.py on package lists; this file goes through
the layers as a scan does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from dockyard.scan.inventory import Limits, build_inventory
from dockyard.scan.matcher import AdvisoryIndex
from dockyard.scan.model import Finding
from dockyard.scan.vulndb import import_paths
from tests.unit.scan.layerkit import (
    File,
    Whiteout,
    apk_entry,
    apk_installed,
    dist_info,
    dpkg_stanza,
    dpkg_status,
    go_binary,
    jar,
    layer,
    npm_package,
    os_release,
    rpm_header,
    rpmdb_sqlite,
    rust_binary,
    source,
)

VULNDATA = Path(__file__).resolve().parents[2] / "data" / "vulndata"
LIMITS = Limits(max_layer_bytes=1 << 30, max_file_bytes=64 << 20)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> AdvisoryIndex:
    db = tmp_path_factory.mktemp("vulndb") / "advisories.sqlite"
    import_paths(db, [VULNDATA])
    return AdvisoryIndex.load(db)


def scan(index: AdvisoryIndex, layers: Sequence[bytes]) -> dict[tuple[str, str], Finding]:
    outcome = build_inventory([source(b) for b in layers], [f"layer {i}" for i in range(len(layers))], LIMITS)
    return {(f.id, f.package): f for f in index.match(outcome.inventory.os, outcome.inventory.packages)}


def debian(*stanzas: str, codename: str = "bookworm", version: str = "12") -> bytes:
    return layer([File("etc/os-release", os_release("debian", version, codename)),
                  File("var/lib/dpkg/status", dpkg_status(*stanzas))])


def test_dpkg_matches_on_the_source_package_and_the_release(index: AdvisoryIndex) -> None:
    found = scan(index, [debian(
        dpkg_stanza("libssl3", "3.0.11-1~deb12u1", source="openssl"),       # DSA-5532-1: fixed in 3.0.11-1~deb12u2
        dpkg_stanza("openssh-client", "1:9.2p1-2+deb12u1", source="openssh"),  # DSA-5586-1 and DSA-5724-1
        dpkg_stanza("libc6", "2.36-9+deb12u3", source="glibc"),             # DSA-5514-1's fixed version itself
        dpkg_stanza("liblzma5", "5.4.1-0.2", source="xz-utils"),            # CVE-2024-3094: not-affected in bookworm
        dpkg_stanza("apt", "2.6.1"),                                        # CVE-2011-3374: unimportant
        dpkg_stanza("coreutils", "9.1-1"),                                  # CVE-2016-2781: <ignored> in bookworm
        dpkg_stanza("libxml2", "2.9.14+dfsg-1.3~deb12u1", source="libxml2"),  # CVE-2024-25062: <no-dsa>
    )])
    ssl = found[("CVE-2023-5363", "libssl3")]
    assert ssl.source_package == "openssl" and ssl.fixed_version == "3.0.11-1~deb12u2" and ssl.layer == 0
    assert ssl.installed_version == "3.0.11-1~deb12u1" and "DSA-5532-1" in ssl.aliases
    assert found[("CVE-2024-6387", "openssh-client")].fixed_version == "1:9.2p1-2+deb12u3"  # epoch kept
    assert found[("CVE-2023-48795", "openssh-client")].fixed_version == "1:9.2p1-2+deb12u2"
    assert not any(p == "libc6" for _, p in found)
    assert not any(p == "liblzma5" for _, p in found)
    assert not any(p == "apt" for _, p in found)
    coreutils = found[("CVE-2016-2781", "coreutils")]
    assert coreutils.fixed_version is None and coreutils.fix_status == "will_not_fix"
    assert found[("CVE-2024-25062", "libxml2")].fix_status == "will_not_fix"


def test_dpkg_fixed_versions_and_other_releases_are_not_reported(index: AdvisoryIndex) -> None:
    fixed = scan(index, [debian(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"),
                                dpkg_stanza("openssh-client", "1:9.2p1-2+deb12u3", source="openssh"))])
    assert not {p for _, p in fixed} & {"libssl3", "openssh-client"}
    # bullseye's openssh fix is 1:8.4p1-5+deb11u3: a bullseye image at that version has no finding
    # from DSA-5586-1, and bookworm's fixed versions do not apply to it.
    bullseye = scan(index, [debian(dpkg_stanza("openssh-client", "1:8.4p1-5+deb11u3", source="openssh"),
                                   codename="bullseye", version="11")])
    assert ("CVE-2023-48795", "openssh-client") not in bullseye
    older = scan(index, [debian(dpkg_stanza("openssh-client", "1:8.4p1-5+deb11u2", source="openssh"),
                                codename="bullseye", version="11")])
    assert older[("CVE-2023-48795", "openssh-client")].fixed_version == "1:8.4p1-5+deb11u3"


def test_a_package_removed_by_a_later_layer_is_not_reported(index: AdvisoryIndex) -> None:
    base = debian(dpkg_stanza("libssl3", "3.0.11-1~deb12u1", source="openssl"))
    python = layer(dist_info("urllib3", "1.26.5"))
    removed = layer([Whiteout("usr/local/lib/python3.11/site-packages/urllib3-1.26.5.dist-info")])
    found = scan(index, [base, python])
    assert found[("CVE-2023-43804", "urllib3")].layer == 1
    assert ("CVE-2023-43804", "urllib3") not in scan(index, [base, python, removed])
    # An upgrade in a later layer: the new version, attributed to that layer, is not vulnerable.
    upgraded = debian(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"))
    assert ("CVE-2023-5363", "libssl3") not in scan(index, [base, upgraded])


def test_apk_on_the_origin_and_the_minor_release(index: AdvisoryIndex) -> None:
    def alpine(*entries: str, version: str = "3.20.3") -> bytes:
        return layer([File("etc/os-release", os_release("alpine", version)),
                      File("lib/apk/db/installed", apk_installed(*entries))])

    found = scan(index, [alpine(apk_entry("busybox", "1.28.3-r1", origin="busybox"),
                                apk_entry("libcrypto3", "1.1.1c-r0", origin="openssl"))])
    busybox = found[("CVE-2018-1000500", "busybox")]
    assert busybox.fixed_version == "1.28.3-r2" and busybox.source_package == "busybox"
    assert found[("CVE-2019-1547", "libcrypto3")].fixed_version == "1.1.1d-r1"
    assert ("CVE-2021-42373", "busybox") not in found  # secfixes key "0": never affected Alpine's package
    assert ("CVE-2018-0734", "libcrypto3") not in found  # fixed in 1.1.1a-r0 < 1.1.1c-r0
    newer = scan(index, [alpine(apk_entry("busybox", "1.28.3-r2", origin="busybox"))])
    assert ("CVE-2018-1000500", "busybox") not in newer


def test_rpm_from_the_sqlite_rpmdb_against_almalinux_errata(index: AdvisoryIndex) -> None:
    def alma(*headers: bytes, version: str = "9.2") -> bytes:
        return layer([File("etc/os-release", os_release("almalinux", version)),
                      File("var/lib/rpm/rpmdb.sqlite", rpmdb_sqlite(headers))])

    found = scan(index, [alma(rpm_header("openssl-libs", "3.0.7", "6.el9_2", epoch=1, sourcerpm="openssl-3.0.7-6.el9_2.src.rpm"))])
    hit = next(f for (i, p), f in found.items() if p == "openssl-libs")
    assert hit.fixed_version == "1:3.0.7-16.el9_2" and "ALSA-2023:3722" in (hit.id, *hit.aliases)
    fixed = scan(index, [alma(rpm_header("openssl-libs", "3.0.7", "16.el9_2", epoch=1,
                                         sourcerpm="openssl-3.0.7-16.el9_2.src.rpm"))])
    assert not any(p == "openssl-libs" for _, p in fixed)
    # AlmaLinux 10's errata do not apply to AlmaLinux 9, and ALBA bug-fix errata are not vulnerabilities.
    assert not any("ALSA-2025:21248" in (f.id, *f.aliases) for f in found.values())


def test_language_packages_npm_maven_go_rust(index: AdvisoryIndex) -> None:
    app = layer([
        npm_package("lodash", "4.17.20", root="srv/app"),
        npm_package("minimist", "1.2.6", root="srv/app"),  # the fixed version
        File("srv/app/lib/app.jar", jar([("org.apache.logging.log4j", "log4j-core", "2.14.1")])),
        File("usr/local/bin/server", go_binary("go1.21.3", ("example.com/server", "v1.0.0"),
                                               [("golang.org/x/net", "v0.17.0"), ("golang.org/x/text", "v0.3.8")]),
             mode=0o755),
        File("usr/local/bin/proxy", rust_binary([{"name": "hyper", "version": "0.14.9", "source": "crates.io"},
                                                 {"name": "tokio-rustls", "version": "0.13.1", "source": "crates.io"}]),
             mode=0o755),
    ])
    found = scan(index, [app])
    lodash = found[("CVE-2021-23337", "lodash")]
    assert lodash.severity == "high" and lodash.fixed_version == "4.17.21" and "GHSA-35jh-r3h4-6jhm" in lodash.aliases
    assert not any(p == "minimist" for _, p in found)
    log4j = found[("CVE-2021-44228", "org.apache.logging.log4j:log4j-core")]
    assert log4j.severity == "critical" and log4j.fixed_version == "2.15.0"
    assert found[("CVE-2024-45338", "golang.org/x/net")].fixed_version == "0.33.0"
    assert ("CVE-2022-32149", "golang.org/x/text") not in found  # v0.3.8 is the fix
    assert found[("CVE-2025-22870", "stdlib")].fixed_version == "1.23.7"
    assert ("CVE-2022-27664", "stdlib") not in found  # fixed in 1.19.1: go1.21.3 is later
    assert any(p == "hyper" for _, p in found)
    assert not any(p == "tokio-rustls" for _, p in found)  # 0.13.1 is patched


def test_a_multi_arch_image_is_two_inventories(index: AdvisoryIndex) -> None:
    amd = scan(index, [debian(dpkg_stanza("libssl3", "3.0.11-1~deb12u1", source="openssl", arch="amd64"))])
    arm = scan(index, [debian(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl", arch="arm64"))])
    assert ("CVE-2023-5363", "libssl3") in amd and ("CVE-2023-5363", "libssl3") not in arm
