"""Alpine's secdb in both layouts (scan/vulndb/alpine.py) and Wolfi's advisories (wolfi.py)."""

from __future__ import annotations

from dockyard.scan.vulndb import alpine, wolfi
from dockyard.scan.vulndb.records import AFFECTED, FIXED, NOT_AFFECTED, WILL_NOT_FIX, Range
from tests.unit.scan.vulndb.vendored import load


def _fixed(version: str) -> tuple[Range, ...]:
    return (Range("ECOSYSTEM", (("introduced", "0"), ("fixed", version))),)


def test_vuln_list_package_file() -> None:
    doc = load("alpine-vuln-list-3.20/alpine/3.20/main/busybox.json")
    assert alpine.is_package_file(doc)
    by_id = {a.id: a for a in alpine.parse_package_file(doc)}
    (entry,) = by_id["CVE-2023-42364"].affected
    assert (entry.ecosystem, entry.release, entry.package) == ("alpine", "3.20", "busybox")
    assert entry.ranges == _fixed("1.36.1-r29")
    assert by_id["CVE-2021-42373"].affected[0].status == NOT_AFFECTED  # the "0" key
    assert "ALPINE-13661" in by_id  # ids that are not CVEs are kept too
    assert by_id["CVE-2023-42364"].url == "https://security.alpinelinux.org/vuln/CVE-2023-42364"


def test_old_secdb_yaml() -> None:
    doc = load("alpine-secdb/v3.4/community.yaml")
    assert alpine.is_secdb(doc)
    by_id = {a.id: a for a in alpine.parse_secdb(doc)}
    (entry,) = by_id["CVE-2016-9893"].affected
    assert (entry.release, entry.package, entry.ranges) == ("3.4", "firefox-esr", _fixed("45.6.0"))
    assert by_id["CVE-2016-4622"].affected[0].ranges == _fixed("2.12.5-r0")


def test_empty_secdb_document() -> None:
    doc = load("alpine-secdb/v3.3/community.yaml")
    assert alpine.is_secdb(doc)
    assert alpine.parse_secdb(doc) == []


def test_served_secdb_json_and_wolfi_secdb() -> None:
    served = {"apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
              "archs": ["x86_64"], "reponame": "main", "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
              "distroversion": "v3.21", "packages": [{"pkg": {"name": "zlib", "secfixes": {
                  "1.2.12-r0": ["CVE-2018-25032"], "1.3.1-r0": ["CVE-2023-45853 (MiniZip)"]}}}]}
    by_id = {a.id: a for a in alpine.parse_secdb(served)}
    assert by_id["CVE-2023-45853"].affected[0].ranges == _fixed("1.3.1-r0")  # the comment is dropped
    assert by_id["CVE-2023-45853"].affected[0].release == "3.21"
    wolfi_doc = {"apkurl": "{{urlprefix}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk", "archs": ["x86_64"],
                 "reponame": "os", "urlprefix": "https://packages.wolfi.dev",
                 "packages": [{"pkg": {"name": "openssl", "secfixes": {"3.3.1-r3": ["CVE-2024-5535"]}}}]}
    (adv,) = alpine.parse_secdb(wolfi_doc)
    assert (adv.affected[0].ecosystem, adv.affected[0].release) == ("wolfi", "")


def test_wolfi_latest_event_decides() -> None:
    doc = load("wolfi-advisories-apache2/openssl.advisories.yaml")
    assert wolfi.is_advisories_file(doc)
    by_alias = {alias: a for a in wolfi.parse(doc) for alias in a.aliases}
    fixed = by_alias["CVE-2024-5535"]
    assert fixed.id == "CGA-3mrr-589r-46qj"
    assert fixed.affected[0].ranges == _fixed("3.3.1-r3")  # detection first, then fixed
    assert fixed.published == "2024-06-28T16:10:54+00:00"
    false_positives = [a for a in wolfi.parse(doc) if a.affected[0].status == NOT_AFFECTED]
    assert false_positives
    statuses = {a.affected[0].status for a in wolfi.parse(load("wolfi-advisories-apache2/busybox.advisories.yaml"))}
    assert AFFECTED in statuses  # pending-upstream-fix, detection
    go_doc = load("wolfi-advisories-apache2/go-1.21.advisories.yaml")
    go = {alias: a for a in wolfi.parse(go_doc) for alias in a.aliases}
    assert go["CVE-2024-34158"].affected[0].status == WILL_NOT_FIX
    assert go["CVE-2023-39325"].affected[0].status == FIXED
