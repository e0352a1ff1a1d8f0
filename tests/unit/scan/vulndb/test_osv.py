"""OSV records as PyPA, the Go vulndb, GitHub and AlmaLinux publish them (scan/vulndb/osv.py)."""

from __future__ import annotations

import pytest

from dockyard.scan.vulndb import osv
from dockyard.scan.vulndb.records import GHSA, VENDOR, Range
from tests.unit.scan.vulndb.vendored import load

GHSA_DIR = "osv-ghsa-npm-maven/advisories/github-reviewed/"


def test_pypa_yaml() -> None:
    adv = osv.parse(load("osv-pypi/vulns/requests/PYSEC-2023-74.yaml"))
    assert adv is not None
    assert adv.id == "PYSEC-2023-74"
    assert adv.aliases == ("CVE-2023-32681", "GHSA-j8r2-6x86-q33q")
    assert not adv.bundle
    assert adv.published == "2023-05-26T18:15:00Z"
    (entry,) = adv.affected
    assert (entry.ecosystem, entry.package, entry.release) == ("pypi", "requests", "")
    # the GIT range says nothing about released versions and is dropped
    assert entry.ranges == (Range("ECOSYSTEM", (("introduced", "2.3.0"), ("fixed", "2.31.0"))),)


def test_explicit_versions_are_kept() -> None:
    adv = osv.parse(load("osv-pypi/vulns/requests/PYSEC-2014-13.yaml"))
    assert adv is not None
    (entry,) = adv.affected
    assert "0.12.01" in entry.versions and "2.2.1" in entry.versions


def test_withdrawn_is_dropped() -> None:
    assert osv.parse(load("osv-pypi/vulns/loguru/PYSEC-2022-15.yaml")) is None
    assert osv.parse(load("osv-go/data/osv/GO-2024-2442.json")) is None


def test_ghsa_severity_cvss_and_unsupported_ecosystems() -> None:
    adv = osv.parse(load(GHSA_DIR + "2024/09/GHSA-735f-pc8j-v9w8/GHSA-735f-pc8j-v9w8.json"))
    assert adv is not None
    assert (adv.severity, adv.severity_kind) == ("high", GHSA)
    assert adv.cvss_vector is not None and adv.cvss_vector.startswith("CVSS:3.")  # v3 preferred over v4
    assert adv.cvss_score == 7.5
    assert adv.url == "https://github.com/advisories/GHSA-735f-pc8j-v9w8"
    assert {e.ecosystem for e in adv.affected} == {"maven"}  # RubyGems left out
    assert "com.google.protobuf:protobuf-java" in {e.package for e in adv.affected}
    moderate = osv.parse(load("osv-ghsa-pypi/advisories/github-reviewed/2023/05/GHSA-j8r2-6x86-q33q/"
                              "GHSA-j8r2-6x86-q33q.json"))
    assert moderate is not None and moderate.severity == "medium"


def test_go_stdlib_and_placeholder_dates() -> None:
    adv = osv.parse(load("osv-go/data/osv/GO-2025-3503.json"))
    assert adv is not None
    assert adv.published is None and adv.modified is None  # 0001-01-01 in the repository
    assert adv.url == "https://pkg.go.dev/vuln/GO-2025-3503"
    stdlib = next(e for e in adv.affected if e.package == "stdlib")
    assert stdlib.ranges[0].type == "SEMVER"
    assert ("introduced", "1.24.0-0") in stdlib.ranges[0].events
    assert {e.package for e in adv.affected} == {"stdlib", "golang.org/x/net"}


def test_almalinux_errata_are_bundles_rated_by_their_summary() -> None:
    adv = osv.parse(load("osv-almalinux/advisories/almalinux9/ALSA-2023:3722.json"))
    assert adv is not None
    assert adv.bundle
    assert set(adv.aliases) == {"CVE-2023-2650", "CVE-2023-0464", "CVE-2023-0465", "CVE-2023-0466", "CVE-2023-1255"}
    assert (adv.severity, adv.severity_kind) == ("medium", VENDOR)  # "Moderate: openssl security …"
    assert adv.url == "https://access.redhat.com/errata/RHSA-2023:3722"
    libs = next(e for e in adv.affected if e.package == "openssl-libs")
    assert (libs.ecosystem, libs.release) == ("almalinux", "9")
    assert libs.ranges[0].events == (("introduced", "0"), ("fixed", "1:3.0.7-16.el9_2"))


def test_bug_fix_errata_are_not_vulnerabilities() -> None:
    assert osv.parse(load("osv-almalinux/advisories/almalinux9/ALBA-2022:8256.json")) is None


def test_not_osv() -> None:
    with pytest.raises(ValueError):
        osv.parse({"id": "X"})


@pytest.mark.parametrize(("name", "key"), [
    ("PyPI", ("pypi", "", 0)),
    ("crates.io", ("cargo", "", 0)),
    ("AlmaLinux:9", ("almalinux", "9", 0)),
    ("Rocky Linux:9.3", ("rocky", "9", 0)),
    ("Alpine:v3.20", ("alpine", "3.20", 0)),
    ("Debian:12", ("debian", "bookworm", 1)),
    ("Ubuntu:22.04:LTS", ("ubuntu", "jammy", 0)),
    ("Ubuntu:Pro:18.04:LTS", None),
    ("RubyGems", None),
])
def test_ecosystem_keys(name: str, key: tuple[str, str, int] | None) -> None:
    assert osv.ecosystem_key(name) == key


def test_ubuntu_osv_records_name_their_cve_as_upstream() -> None:
    doc = {"id": "UBUNTU-CVE-2024-1234", "upstream": ["CVE-2024-1234"], "modified": "2024-05-01T00:00:00Z",
           "severity": [{"type": "Ubuntu", "score": "medium"}],
           "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
                         "ranges": [{"type": "ECOSYSTEM",
                                     "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.15"}]}]}]}
    adv = osv.parse(doc)
    assert adv is not None
    assert adv.aliases == ("CVE-2024-1234",) and (adv.severity, adv.severity_kind) == ("medium", VENDOR)
    assert (adv.affected[0].ecosystem, adv.affected[0].release) == ("ubuntu", "jammy")
