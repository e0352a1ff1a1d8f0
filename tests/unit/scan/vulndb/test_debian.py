"""The Debian security tracker's three shapes (scan/vulndb/debian.py)."""

from __future__ import annotations

from dockyard.scan.vulndb import debian
from dockyard.scan.vulndb.records import AFFECTED, FIX_DEFERRED, NOT_AFFECTED, VENDOR, WILL_NOT_FIX, Range
from tests.unit.scan.vulndb.vendored import load


def _fixed(version: str) -> tuple[Range, ...]:
    return (Range("ECOSYSTEM", (("introduced", "0"), ("fixed", version))),)


def test_vuln_list_dsa_is_a_bundle_with_release_lines() -> None:
    adv = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/DSA/DSA-5586-1.json"))
    assert adv is not None
    assert adv.bundle and adv.aliases == ("CVE-2023-48795", "CVE-2023-51385")
    assert adv.published == "2023-12-22"
    assert adv.title == "openssh - security update"
    by_release = {e.release: e for e in adv.affected}
    assert by_release["bookworm"].ranges == _fixed("1:9.2p1-2+deb12u2")  # the epoch kept, as written
    assert by_release["bookworm"].tier == 1 and by_release["bookworm"].package == "openssh"
    assert by_release["bullseye"].ranges == _fixed("1:8.4p1-5+deb11u3")


def test_vuln_list_cve_record_tiers() -> None:
    adv = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/CVE/2023/CVE-2023-4911.json"))
    assert adv is not None and not adv.bundle
    by_release = {e.release: e for e in adv.affected}
    assert (by_release[""].status, by_release[""].tier) == (AFFECTED, 2)  # the unstable line
    assert (by_release["buster"].status, by_release["buster"].tier) == (NOT_AFFECTED, 0)


def test_statuses_and_urgency() -> None:
    ignored = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/CVE/2016/CVE-2016-2781.json"))
    assert ignored is not None
    by_release = {e.release: e for e in ignored.affected}
    assert by_release["bookworm"].status == WILL_NOT_FIX
    assert by_release[""].ranges == _fixed("9.4-1") and by_release[""].severity == "low"
    assert (ignored.severity, ignored.severity_kind) == ("low", VENDOR)
    unimportant = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/CVE/2011/CVE-2011-3374.json"))
    assert unimportant is not None and unimportant.affected[0].severity == "unimportant"
    no_dsa = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/CVE/2024/CVE-2024-25062.json"))
    assert no_dsa is not None
    assert {e.release: e.status for e in no_dsa.affected}["bookworm"] == WILL_NOT_FIX
    assert "experimental" not in {e.release for e in no_dsa.affected}
    removed = debian.parse_vuln_list(load("debian-vuln-list-tracker/tracker/CVE/2023/CVE-2023-52425.json"))
    assert removed is not None
    assert {(e.package, e.release): e.status for e in removed.affected}[("libxmltok", "")] == NOT_AFFECTED
    assert removed.related == ("DLA-3893-1", "DLA-3783-1")  # shown, never merged on


def test_text_lists() -> None:
    text = load("debian-security-tracker-2023/data/DSA/list")
    by_id = {a.id: a for a in debian.parse_list(text)}
    openssl = by_id["DSA-5343-1"]
    assert openssl.bundle and len(openssl.aliases) == 5 and openssl.published == "2023-02-07"
    assert [(e.release, e.ranges) for e in openssl.affected] == [("bullseye", _fixed("1.1.1n-0+deb11u4"))]
    assert by_id["DSA-5356-2"].aliases == ()  # a regression update names no CVE
    vlc = {e.release: e for e in by_id["DSA-2218-1"].affected}
    assert vlc["lenny"].status == NOT_AFFECTED and vlc["squeeze"].ranges == _fixed("1.1.3-1squeeze5")
    (dla,) = debian.parse_list(load("debian-security-tracker-2023/data/DLA/list"))
    assert dla.id == "DLA-3325-1" and dla.affected[0].release == "buster"


def test_cve_list_text_with_unstable_lines() -> None:
    text = (
        "CVE-2024-0001 (Some library before 1.2 allows ...)\n"
        "\t{DSA-9999-1}\n"
        "\t- libfoo 1.2-1 (bug #123; low)\n"
        "\t[bookworm] - libfoo <postponed> (Minor issue)\n"
        "\t[bullseye] - libfoo <no-dsa> (Minor issue)\n"
        "\tNOTE: https://example.org/fix\n"
        "CVE-2024-0002 (Only a build tool ...)\n"
        "\t- libbar <unfixed> (unimportant)\n"
        "CVE-2024-XXXX [not assigned yet]\n"
        "\t- libbaz <unfixed>\n"
        "CVE-2024-0003\n"
        "\tRESERVED\n"
    )
    by_id = {a.id: a for a in debian.parse_list(text)}
    assert set(by_id) == {"CVE-2024-0001", "CVE-2024-0002"}
    entries = {e.release: e for e in by_id["CVE-2024-0001"].affected}
    assert entries[""].ranges == _fixed("1.2-1") and entries[""].tier == 2 and entries[""].severity == "low"
    assert entries["bookworm"].status == FIX_DEFERRED and entries["bullseye"].status == WILL_NOT_FIX
    assert by_id["CVE-2024-0001"].related == ("DSA-9999-1",)
    assert by_id["CVE-2024-0002"].affected[0].severity == "unimportant"


def test_tracker_json_export() -> None:
    doc = {
        "openssl": {
            "CVE-2024-4741": {"description": "Use After Free with SSL_free_buffers", "scope": "remote", "releases": {
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.13-1~deb12u1"},
                             "fixed_version": "3.0.14-1~deb12u1", "urgency": "not yet assigned"},
                "trixie": {"status": "open", "repositories": {"trixie": "3.2.1-3"}, "urgency": "low",
                           "nodsa": "Minor issue", "nodsa_reason": "postponed"},
                "bullseye": {"status": "open", "urgency": "low**", "nodsa": "Minor issue", "nodsa_reason": ""},
                "buster": {"status": "resolved", "fixed_version": "0", "urgency": "not yet assigned"},
                "sid": {"status": "undetermined", "urgency": "not yet assigned"},
                "experimental": {"status": "resolved", "fixed_version": "3.3.0-1"},
            }},
        },
        "apt": {"CVE-2011-3374": {"releases": {"bookworm": {"status": "open", "urgency": "unimportant"}}}},
    }
    assert debian.is_tracker_json(doc)
    by_id = {a.id: a for a in debian.parse_tracker_json(doc)}
    entries = {e.release: e for e in by_id["CVE-2024-4741"].affected}
    assert entries["bookworm"].ranges == _fixed("3.0.14-1~deb12u1") and entries["bookworm"].tier == 0
    assert entries["trixie"].status == FIX_DEFERRED
    assert entries["bullseye"].status == WILL_NOT_FIX and entries["bullseye"].severity == "low"
    assert entries["buster"].status == NOT_AFFECTED
    assert entries["sid"].status == AFFECTED  # the export's sid is a release like the others
    assert "experimental" not in entries
    assert by_id["CVE-2011-3374"].affected[0].severity == "unimportant"
