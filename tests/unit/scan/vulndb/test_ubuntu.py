"""Ubuntu CVE tracker files (scan/vulndb/ubuntu.py)."""

from __future__ import annotations

import pytest

from dockyard.scan.vulndb import ubuntu
from dockyard.scan.vulndb.records import AFFECTED, NOT_AFFECTED, VENDOR, WILL_NOT_FIX, fixed_in
from tests.unit.scan.vulndb.vendored import load


def test_released_dne_and_pseudo_releases() -> None:
    text = load("ubuntu-cve-tracker-2020/active/CVE-2018-0734")
    assert ubuntu.looks_like(text)
    adv = ubuntu.parse(text)
    assert adv is not None
    assert adv.id == "CVE-2018-0734" and adv.published == "2018-10-30"
    assert (adv.severity, adv.severity_kind) == ("low", VENDOR)
    assert adv.cvss_vector == "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N" and adv.cvss_score == 5.9
    entries = {(e.release, e.package): e for e in adv.affected}
    assert entries[("bionic", "openssl")].ranges == fixed_in("1.1.0g-2ubuntu4.3")
    assert entries[("bionic", "openssl1.0")].ranges[0].events[1] == ("fixed", "1.0.2n-1ubuntu5.2")
    assert entries[("bionic", "openssl098")].status == NOT_AFFECTED  # DNE
    assert entries[("trusty", "openssl098")].status == WILL_NOT_FIX
    releases = {e.release for e in adv.affected}
    assert not releases & {"upstream", "devel", "precise", "esm"}  # precise only has an ESM line


def test_needed_and_not_affected() -> None:
    needed = ubuntu.parse(load("ubuntu-cve-tracker-2020/active/CVE-2018-1000021"))
    assert needed is not None
    assert {(e.release, e.package): e.status for e in needed.affected}[("bionic", "git")] == AFFECTED
    curl = ubuntu.parse(load("ubuntu-cve-tracker-2020/retired/CVE-2019-15601"))
    assert curl is not None
    assert {e.release: e.status for e in curl.affected}["bionic"] == NOT_AFFECTED


def test_not_a_tracker_file() -> None:
    assert not ubuntu.looks_like("hello")
    with pytest.raises(ValueError):
        ubuntu.parse("hello: world\n")
