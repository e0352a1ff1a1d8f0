"""Matching accuracy against the vendored real advisories (tests/data/vulndata), both ways: known
vulnerable versions are found with the advisory's own fixed version, and fixed versions,
not-affected statements, other releases and withdrawn records give nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.scan.matcher import AdvisoryIndex
from dockyard.scan.model import APK, CARGO, DEB, GO, MAVEN, NPM, PYPI, RPM, Finding, OsInfo, Package
from dockyard.scan.vulndb import import_paths
from tests.unit.scan.vulndb.vendored import VULNDATA

BOOKWORM = OsInfo("debian", "12", "bookworm")
BULLSEYE = OsInfo("debian", "11", "bullseye")
TRIXIE = OsInfo("debian", "13", "trixie")
ALPINE = OsInfo("alpine", "3.20.3")
ALMA9 = OsInfo("almalinux", "9.4")
BIONIC = OsInfo("ubuntu", "18.04")
WOLFI = OsInfo("wolfi", "20230201")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdvisoryIndex]:
    db = tmp_path_factory.mktemp("vulndb") / "advisories.sqlite"
    import_paths(db, [VULNDATA])
    yield AdvisoryIndex.load(db)


def os_pkg(type_: str, name: str, version: str, source: str | None = None,
           source_version: str | None = None) -> Package:
    source_version = source_version or (version if source else None)
    return Package(name, version, type_, 0, "var/lib/dpkg/status", source, source_version)


def lang(type_: str, name: str, version: str) -> Package:
    return Package(name, version, type_, 3, "app/manifest")


def found(index: AdvisoryIndex, os_info: OsInfo | None, *packages: Package) -> dict[str, Finding]:
    findings = index.match(os_info, list(packages))
    by_id = {f.id: f for f in findings}
    assert len(by_id) == len(findings), "one finding per vulnerability and package"
    return by_id


# Debian -----------------------------------------------------------------------------------------


def test_debian_openssh_by_source_package(index: AdvisoryIndex) -> None:
    old = found(index, BOOKWORM, os_pkg(DEB, "openssh-server", "1:9.2p1-2+deb12u1", "openssh"))
    assert set(old) == {"CVE-2023-48795", "CVE-2023-51385", "CVE-2024-6387"}
    terrapin = old["CVE-2023-48795"]
    assert terrapin.fixed_version == "1:9.2p1-2+deb12u2" and terrapin.fix_status == "fixed"
    assert (terrapin.package, terrapin.source_package, terrapin.type) == ("openssh-server", "openssh", DEB)
    assert terrapin.layer == 0
    assert terrapin.installed_version == "1:9.2p1-2+deb12u1"
    assert terrapin.aliases == ("DSA-5586-1",) and terrapin.sources == ("debian:debian-vuln-list-tracker",)
    assert terrapin.url == "https://security-tracker.debian.org/tracker/CVE-2023-48795"
    assert old["CVE-2024-6387"].fixed_version == "1:9.2p1-2+deb12u3"
    newer = found(index, BOOKWORM, os_pkg(DEB, "openssh-client", "1:9.2p1-2+deb12u2", "openssh"))
    assert set(newer) == {"CVE-2024-6387"}
    assert found(index, BOOKWORM, os_pkg(DEB, "openssh-client", "1:9.2p1-2+deb12u3", "openssh")) == {}


def test_debian_binary_from_source_and_tilde(index: AdvisoryIndex) -> None:
    libssl = found(index, BOOKWORM, os_pkg(DEB, "libssl3", "3.0.11-1~deb12u1", "openssl"))
    assert libssl["CVE-2023-5363"].fixed_version == "3.0.11-1~deb12u2"
    assert found(index, BOOKWORM, os_pkg(DEB, "libssl3", "3.0.11-1~deb12u2", "openssl")) == {}
    assert found(index, BOOKWORM, os_pkg(DEB, "libssl3", "3.0.11-1", "openssl")) == {}  # ~ sorts lower
    # a binNMU: the binary's version differs, the source's is what advisories speak of
    binnmu = os_pkg(DEB, "libssl3", "3.0.11-1~deb12u1+b1", "openssl", "3.0.11-1~deb12u1")
    assert set(found(index, BOOKWORM, binnmu)) == {"CVE-2023-5363"}
    assert set(found(index, BOOKWORM, os_pkg(DEB, "openssl", "3.0.11-1~deb12u1"))) == {"CVE-2023-5363"}  # no Source:


def test_debian_dsa_line_wins_over_an_older_cve_record(index: AdvisoryIndex) -> None:
    glibc = found(index, BOOKWORM, os_pkg(DEB, "libc6", "2.36-9+deb12u1", "glibc"))
    assert glibc["CVE-2023-4911"].fixed_version == "2.36-9+deb12u3"  # the CVE record still says <unfixed>
    assert glibc["CVE-2023-4911"].aliases == ("DSA-5514-1",)
    assert found(index, BOOKWORM, os_pkg(DEB, "libc6", "2.36-9+deb12u3", "glibc")) == {}
    buster = found(index, OsInfo("debian", "10", "buster"), os_pkg(DEB, "libc6", "2.28-10+deb10u2", "glibc"))
    assert "CVE-2023-4911" not in buster  # [buster] <not-affected>


def test_debian_statuses(index: AdvisoryIndex) -> None:
    assert found(index, BOOKWORM, os_pkg(DEB, "apt", "2.6.1", "apt")) == {}  # unimportant: not reported
    coreutils = found(index, BOOKWORM, os_pkg(DEB, "coreutils", "9.1-1", "coreutils"))["CVE-2016-2781"]
    assert (coreutils.fix_status, coreutils.fixed_version, coreutils.severity) == ("will_not_fix", None, "low")
    libxml2 = found(index, BOOKWORM, os_pkg(DEB, "libxml2", "2.9.14+dfsg-1.3~deb12u1", "libxml2"))
    assert libxml2["CVE-2024-25062"].fix_status == "will_not_fix"  # <no-dsa>
    assert found(index, BOOKWORM, os_pkg(DEB, "liblzma5", "5.4.1-0.2", "xz-utils")) == {}  # not-affected
    expat = found(index, BOOKWORM, os_pkg(DEB, "libexpat1", "2.5.0-1", "expat"))["CVE-2023-52425"]
    assert expat.fixed_version == "2.5.0-1+deb12u2"
    assert found(index, BOOKWORM, os_pkg(DEB, "libexpat1", "2.5.0-1+deb12u2", "expat")) == {}


def test_debian_unstable_line_applies_to_releases_without_their_own(index: AdvisoryIndex) -> None:
    xz = found(index, TRIXIE, os_pkg(DEB, "liblzma5", "5.6.0-0.2", "xz-utils"))["CVE-2024-3094"]
    assert (xz.fixed_version, xz.fix_status) == ("5.6.1+really5.4.5-1", "fixed")
    assert found(index, TRIXIE, os_pkg(DEB, "liblzma5", "5.6.1+really5.4.5-1", "xz-utils")) == {}
    # the release from VERSION_ID alone, and the text `list` format for bullseye
    bullseye = found(index, OsInfo("debian", "11"), os_pkg(DEB, "libssl1.1", "1.1.1n-0+deb11u2", "openssl"))
    assert bullseye["CVE-2023-0286"].fixed_version == "1.1.1n-0+deb11u4"
    assert bullseye["CVE-2022-2068"].fixed_version == "1.1.1n-0+deb11u3"
    assert bullseye["CVE-2023-0286"].sources == ("debian:debian-security-tracker-2023",)
    assert found(index, BULLSEYE, os_pkg(DEB, "libssl1.1", "1.1.1n-0+deb11u4", "openssl")) == {}


# Alpine, Wolfi, AlmaLinux, Ubuntu, Red Hat ------------------------------------------------------------


def test_alpine_by_origin_and_release(index: AdvisoryIndex) -> None:
    busybox = found(index, ALPINE, os_pkg(APK, "busybox", "1.36.1-r28", "busybox"))
    assert busybox["CVE-2023-42364"].fixed_version == "1.36.1-r29"
    assert busybox["CVE-2025-46394"].fixed_version == "1.36.1-r31"
    assert set(found(index, ALPINE, os_pkg(APK, "ssl_client", "1.36.1-r28", "busybox"))) == set(busybox)
    assert found(index, ALPINE, os_pkg(APK, "busybox", "1.36.1-r31", "busybox")) == {}
    crypto = found(index, ALPINE, os_pkg(APK, "libcrypto3", "3.3.1-r0", "openssl"))
    assert crypto["CVE-2024-5535"].fixed_version == "3.3.1-r1"
    assert crypto["CVE-2024-5535"].severity == "unknown"  # Alpine rates nothing, no other record rates it
    assert "CVE-2022-1292" not in crypto  # secfixes "0": never affected Alpine's package
    assert found(index, OsInfo("alpine", "3.19.1"), os_pkg(APK, "busybox", "1.36.1-r28", "busybox")) == {}


def test_wolfi(index: AdvisoryIndex) -> None:
    crypto = found(index, WOLFI, os_pkg(APK, "libcrypto3", "3.3.1-r0", "openssl"))
    assert crypto["CVE-2024-5535"].fixed_version == "3.3.1-r3"
    assert "CGA-3mrr-589r-46qj" in crypto["CVE-2024-5535"].aliases
    assert "CVE-2023-0466" not in crypto  # false-positive-determination
    go = found(index, WOLFI, os_pkg(APK, "go-1.21", "1.21.2-r0", "go-1.21"))
    assert go["CVE-2024-34158"].fix_status == "will_not_fix"
    assert go["CVE-2023-39325"].fixed_version == "1.21.3-r0"


def test_almalinux_binary_and_source_rpm_names(index: AdvisoryIndex) -> None:
    old = found(index, ALMA9, os_pkg(RPM, "openssl-libs", "1:3.0.7-6.el9", "openssl", "3.0.7-6.el9"))
    assert set(old) == {"CVE-2023-2650", "CVE-2023-0464", "CVE-2023-0465", "CVE-2023-0466", "CVE-2023-1255"}
    one = old["CVE-2023-2650"]
    assert (one.fixed_version, one.severity, one.aliases) == ("1:3.0.7-16.el9_2", "medium", ("ALSA-2023:3722",))
    assert one.title == "Moderate: openssl security and bug fix update"
    assert found(index, ALMA9, os_pkg(RPM, "openssl-libs", "1:3.0.7-16.el9_2", "openssl")) == {}
    assert found(index, ALMA9, os_pkg(RPM, "openssl-libs", "1:3.0.7-27.el9", "openssl")) == {}
    # a subpackage the erratum does not list still matches through its source rpm
    assert set(found(index, ALMA9, os_pkg(RPM, "openssl-fips-provider", "1:3.0.7-6.el9", "openssl"))) == set(old)
    # ALSA-2025:21248 is AlmaLinux 10's: not reported on 9, reported on 10
    assert "CVE-2025-9230" not in found(index, ALMA9, os_pkg(RPM, "openssl", "1:3.0.7-6.el9"))
    alma10 = found(index, OsInfo("almalinux", "10.0"), os_pkg(RPM, "openssl", "1:3.5.1-4.el10_1"))
    assert alma10["CVE-2025-9230"].fixed_version == "1:3.5.1-4.el10_1.alma.1"


def test_ubuntu(index: AdvisoryIndex) -> None:
    libssl = found(index, BIONIC, os_pkg(DEB, "libssl1.1", "1.1.0g-2ubuntu4", "openssl"))["CVE-2018-0734"]
    assert (libssl.fixed_version, libssl.severity, libssl.cvss_score) == ("1.1.0g-2ubuntu4.3", "low", 5.9)
    assert libssl.url == "https://ubuntu.com/security/CVE-2018-0734"
    assert found(index, BIONIC, os_pkg(DEB, "libssl1.1", "1.1.0g-2ubuntu4.3", "openssl")) == {}
    git = found(index, BIONIC, os_pkg(DEB, "git", "1:2.17.0-1ubuntu1", "git"))["CVE-2018-1000021"]
    assert (git.fix_status, git.fixed_version) == ("affected", None)
    assert found(index, BIONIC, os_pkg(DEB, "curl", "7.58.0-2ubuntu3", "curl")) == {}  # not-affected
    assert found(index, OsInfo("ubuntu", "20.04"), os_pkg(DEB, "git", "1:2.25.1-1ubuntu3", "git")) == {}


def test_red_hat_vex_not_affected(index: AdvisoryIndex) -> None:
    assert found(index, OsInfo("rhel", "9.3"), os_pkg(RPM, "xz-libs", "5.2.5-8.el9_0", "xz")) == {}


# Language packages ----------------------------------------------------------------------------


def test_pypi_records_of_one_cve_merge(index: AdvisoryIndex) -> None:
    by_id = found(index, None, lang(PYPI, "Requests", "2.25.0"))
    assert set(by_id) == {"CVE-2023-32681"}
    f = by_id["CVE-2023-32681"]
    assert f.aliases == ("GHSA-j8r2-6x86-q33q", "PYSEC-2023-74")
    assert f.sources == ("osv:osv-ghsa-pypi", "osv:osv-pypi")
    assert (f.fixed_version, f.severity, f.cvss_score) == ("2.31.0", "medium", 6.1)  # GitHub's MODERATE
    assert f.title == "Unintended leak of Proxy-Authorization header in requests"
    assert (f.layer, f.type, f.source_package) == (3, PYPI, None)
    old = found(index, None, lang(PYPI, "requests", "2.19.1"))
    assert old["CVE-2018-18074"].fixed_version == "2.20.0"
    assert found(index, None, lang(PYPI, "requests", "2.31.0")) == {}


def test_pypi_branches_names_and_withdrawn(index: AdvisoryIndex) -> None:
    assert found(index, None, lang(PYPI, "urllib3", "1.26.16"))["CVE-2023-43804"].fixed_version == "1.26.17"
    assert found(index, None, lang(PYPI, "urllib3", "2.0.5"))["CVE-2023-43804"].fixed_version == "2.0.6"
    assert found(index, None, lang(PYPI, "urllib3", "2.0.6")) == {}
    assert found(index, None, lang(PYPI, "urllib3", "1.26.18")) == {}
    assert found(index, None, lang(PYPI, "Jinja2", "2.10"))["CVE-2019-10906"].fixed_version == "2.10.1"
    assert found(index, None, lang(PYPI, "loguru", "0.5.3")) == {}  # withdrawn


def test_npm(index: AdvisoryIndex) -> None:
    lodash = found(index, None, lang(NPM, "lodash", "4.17.11"))
    assert set(lodash) == {"CVE-2019-10744", "CVE-2021-23337"}  # 4.17.11 is the fix of NSWG-ECO-493
    assert lodash["CVE-2019-10744"].fixed_version == "4.17.12" and lodash["CVE-2019-10744"].severity == "critical"
    legacy = found(index, None, lang(NPM, "lodash", "4.17.4"))["CVE-2018-3721"]
    assert (legacy.fixed_version, legacy.aliases, legacy.severity) == ("4.17.5", ("NSWG-ECO-368",), "low")
    assert found(index, None, lang(NPM, "lodash", "4.17.21")) == {}
    assert found(index, None, lang(NPM, "minimist", "1.2.5"))["CVE-2021-44906"].fixed_version == "1.2.6"
    assert found(index, None, lang(NPM, "minimist", "0.2.1"))["CVE-2021-44906"].fixed_version == "0.2.4"
    assert found(index, None, lang(NPM, "minimist", "0.2.4")) == {}
    assert found(index, None, lang(NPM, "express", "5.0.0-beta.1"))["CVE-2024-29041"].fixed_version == "5.0.0-beta.3"
    assert found(index, None, lang(NPM, "express", "5.0.0")) == {}


def test_maven(index: AdvisoryIndex) -> None:
    log4j = "org.apache.logging.log4j:log4j-core"
    assert found(index, None, lang(MAVEN, log4j, "2.14.1"))["CVE-2021-44228"].fixed_version == "2.15.0"
    assert found(index, None, lang(MAVEN, log4j, "2.12.1"))["CVE-2021-44228"].fixed_version == "2.12.2"
    assert found(index, None, lang(MAVEN, log4j, "2.3"))["CVE-2021-44228"].fixed_version == "2.3.1"
    for fixed in ("2.15.0", "2.12.2", "2.3.1"):
        assert found(index, None, lang(MAVEN, log4j, fixed)) == {}
    beans = "org.springframework:spring-beans"
    assert found(index, None, lang(MAVEN, beans, "5.2.19.RELEASE"))["CVE-2022-22965"].fixed_version == "5.2.20.RELEASE"
    assert found(index, None, lang(MAVEN, beans, "5.2.20.RELEASE")) == {}
    jackson = "com.fasterxml.jackson.core:jackson-databind"
    assert found(index, None, lang(MAVEN, jackson, "2.13.2"))["CVE-2020-36518"].fixed_version == "2.13.2.1"
    assert found(index, None, lang(MAVEN, jackson, "2.13.2.1")) == {}
    netty = found(index, None, lang(MAVEN, "io.netty:netty-codec-http2", "4.1.99.Final"))
    assert netty["GHSA-xpw8-rcwv-8f8p"].fixed_version == "4.1.100.Final"  # no CVE: named by its GHSA id


def test_go(index: AdvisoryIndex) -> None:
    net = found(index, None, lang(GO, "golang.org/x/net", "v0.35.0"))["CVE-2025-22870"]
    assert (net.fixed_version, net.aliases) == ("0.36.0", ("GHSA-qxp5-gwg8-xv66", "GO-2025-3503"))
    assert net.url == "https://pkg.go.dev/vuln/GO-2025-3503"
    assert "CVE-2025-22870" not in found(index, None, lang(GO, "golang.org/x/net", "v0.36.0"))
    assert found(index, None, lang(GO, "stdlib", "v1.24.0"))["CVE-2025-22870"].fixed_version == "1.24.1"
    assert found(index, None, lang(GO, "stdlib", "v1.23.6"))["CVE-2025-22870"].fixed_version == "1.23.7"
    assert "CVE-2025-22870" not in found(index, None, lang(GO, "stdlib", "v1.23.7"))
    assert found(index, None, lang(GO, "golang.org/x/text", "v0.3.7"))["CVE-2022-32149"].fixed_version == "0.3.8"
    assert found(index, None, lang(GO, "golang.org/x/text", "v0.3.8")) == {}
    assert found(index, None, lang(GO, "github.com/gravitational/teleport", "v14.0.0")) == {}  # withdrawn
    assert found(index, None, lang(GO, "golang.org/x/text", "devel")) == {}  # unparsable: nothing, no error


def test_cargo(index: AdvisoryIndex) -> None:
    hyper = found(index, None, lang(CARGO, "hyper", "0.14.9"))
    assert set(hyper) == {"CVE-2021-32714", "CVE-2021-32715"}
    assert hyper["CVE-2021-32714"].severity == "critical" and hyper["CVE-2021-32714"].cvss_score == 9.1
    assert found(index, None, lang(CARGO, "hyper", "0.14.10")) == {}
    assert found(index, None, lang(CARGO, "tokio_rustls", "0.12.2"))["CVE-2020-35875"].fixed_version == "0.12.3"
    assert found(index, None, lang(CARGO, "tokio-rustls", "0.13.0"))["CVE-2020-35875"].fixed_version == "0.13.1"
    assert found(index, None, lang(CARGO, "tokio-rustls", "0.11.0")) == {}  # unaffected
    assert found(index, None, lang(CARGO, "markdown", "0.3.0")) == {}  # withdrawn
    assert found(index, None, lang(CARGO, "abomonation", "0.7.3")) == {}  # informational


def test_nothing_matches_without_an_ecosystem(index: AdvisoryIndex) -> None:
    assert index.match(None, [os_pkg(DEB, "libc6", "2.36-9+deb12u1", "glibc")]) == []
    assert index.match(OsInfo("fedora", "40"), [os_pkg(RPM, "openssl-libs", "1:3.0.7-6.el9", "openssl")]) == []
    assert index.match(None, [Package("rails", "5.0.0", "gem", 0, "x")]) == []


# The index itself -----------------------------------------------------------------------------


def test_index_is_cached_per_file_identity(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    empty = AdvisoryIndex.load(db)
    assert (empty.db_id, empty.updated_at, empty.match(None, [lang(NPM, "lodash", "4.17.4")])) == ("", None, [])
    first = import_paths(db, [VULNDATA / "osv-ghsa-npm-maven"])
    index = AdvisoryIndex.load(db)
    assert index.db_id == first.db_id and index.updated_at is not None
    assert AdvisoryIndex.load(db) is index  # no reload while the file is the same
    second = import_paths(db, [VULNDATA / "npm-nodejs-security-wg"])
    reloaded = AdvisoryIndex.load(db)
    assert reloaded is not index and reloaded.db_id == second.db_id
    assert "CVE-2018-3721" in found(reloaded, None, lang(NPM, "lodash", "4.17.4"))
    assert "CVE-2018-3721" not in found(index, None, lang(NPM, "lodash", "4.17.4"))  # the old one is unchanged


def test_advisory_details(index: AdvisoryIndex) -> None:
    details = index.advisory("CVE-2023-32681")
    assert details is not None
    assert details.aliases == ("GHSA-j8r2-6x86-q33q", "PYSEC-2023-74")
    assert details.severity == "medium" and details.cvss_score == 6.1
    assert details.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"
    assert details.description and "Proxy-Authorization" in details.description
    assert details.published == "2023-05-22T20:36:32Z"
    assert details.sources == ("osv:osv-ghsa-pypi", "osv:osv-pypi")
    by_alias = index.advisory("GHSA-j8r2-6x86-q33q")
    assert by_alias is not None and by_alias.title == "Unintended leak of Proxy-Authorization header in requests"
    dsa = index.advisory("DSA-5586-1")
    assert dsa is not None and dsa.url == "https://security-tracker.debian.org/tracker/DSA-5586-1"
    assert index.advisory("CVE-1999-0000") is None
