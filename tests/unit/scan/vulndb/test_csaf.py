"""Red Hat CSAF advisories and VEX (scan/vulndb/csaf.py)."""

from __future__ import annotations

from typing import Any

from dockyard.scan.vulndb import csaf
from dockyard.scan.vulndb.records import AFFECTED, NOT_AFFECTED, VENDOR, Range
from tests.unit.scan.vulndb.vendored import load


def test_vex_not_affected() -> None:
    doc = load("redhat-csaf/vex/2024/cve-2024-3094.json")
    assert csaf.looks_like(doc)
    (adv,) = csaf.parse(doc)
    assert adv.id == "CVE-2024-3094"
    assert (adv.severity, adv.severity_kind) == ("critical", VENDOR)
    assert adv.cvss_score == 10.0
    # RHEL 6…10 streams map; the JBoss product does not
    assert {(e.release, e.package, e.status) for e in adv.affected} == {
        (str(n), "xz", NOT_AFFECTED) for n in (6, 7, 8, 9, 10)}


def _rhsa() -> dict[str, Any]:
    """An RHSA shaped like Red Hat's CSAF (product tree, relationships, product_status)."""
    rhel9 = {"category": "product_name", "name": "Red Hat Enterprise Linux AppStream (v. 9)",
             "product": {"name": "Red Hat Enterprise Linux AppStream (v. 9)", "product_id": "AppStream-9.2.0.Z.MAIN",
                         "product_identification_helper": {"cpe": "cpe:/a:redhat:enterprise_linux:9::appstream"}}}
    eus = {"category": "product_name", "name": "RHEL EUS", "product": {
        "name": "RHEL EUS", "product_id": "EUS-9.0",
        "product_identification_helper": {"cpe": "cpe:/a:redhat:rhel_eus:9.0::appstream"}}}
    libs = {"category": "product_version", "name": "openssl-libs-1:3.0.7-16.el9_2.x86_64", "product": {
        "name": "openssl-libs-1:3.0.7-16.el9_2.x86_64", "product_id": "openssl-libs-1:3.0.7-16.el9_2.x86_64",
        "product_identification_helper": {"purl": "pkg:rpm/redhat/openssl-libs@3.0.7-16.el9_2?arch=x86_64&epoch=1"}}}
    src = {"category": "product_version", "name": "openssl-1:3.0.7-16.el9_2.src", "product": {
        "name": "openssl-1:3.0.7-16.el9_2.src", "product_id": "openssl-1:3.0.7-16.el9_2.src"}}
    perl = {"category": "product_version", "name": "openssl-perl",
            "product": {"name": "openssl-perl", "product_id": "openssl-perl"}}

    def rel(product: str, component: str) -> dict[str, Any]:
        return {"category": "default_component_of", "product_reference": component,
                "relates_to_product_reference": product,
                "full_product_name": {"name": f"{component} as a component of {product}",
                                      "product_id": f"{product}:{component}"}}

    return {
        "document": {"csaf_version": "2.0", "category": "csaf_security_advisory", "title": "openssl security update",
                     "aggregate_severity": {"text": "Moderate"},
                     "tracking": {"id": "RHSA-2023:3722", "initial_release_date": "2023-06-21T00:00:00Z",
                                  "current_release_date": "2023-06-22T00:00:00Z"}},
        "product_tree": {"branches": [{"category": "vendor", "name": "Red Hat", "branches": [
            {"category": "product_family", "name": "RHEL", "branches": [rhel9, eus]},
            {"category": "architecture", "name": "x86_64", "branches": [libs]},
            {"category": "architecture", "name": "src", "branches": [src, perl]}]}],
            "relationships": [rel("AppStream-9.2.0.Z.MAIN", "openssl-libs-1:3.0.7-16.el9_2.x86_64"),
                              rel("AppStream-9.2.0.Z.MAIN", "openssl-1:3.0.7-16.el9_2.src"),
                              rel("AppStream-9.2.0.Z.MAIN", "openssl-perl"),
                              rel("EUS-9.0", "openssl-libs-1:3.0.7-16.el9_2.x86_64")]},
        "vulnerabilities": [{
            "cve": "CVE-2023-2650", "title": "openssl: Possible DoS translating ASN.1 object identifiers",
            "product_status": {"fixed": ["AppStream-9.2.0.Z.MAIN:openssl-libs-1:3.0.7-16.el9_2.x86_64",
                                         "AppStream-9.2.0.Z.MAIN:openssl-1:3.0.7-16.el9_2.src",
                                         "EUS-9.0:openssl-libs-1:3.0.7-16.el9_2.x86_64"],
                               "known_affected": ["AppStream-9.2.0.Z.MAIN:openssl-perl"]},
            "scores": [{"cvss_v3": {"vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}}],
            "threats": [{"category": "impact", "details": "Low"}],
        }],
    }


def test_rhsa_fixed_components_of_base_streams() -> None:
    (adv,) = csaf.parse(_rhsa())
    assert adv.id == "CVE-2023-2650" and adv.related == ("RHSA-2023:3722",)
    assert adv.severity == "low"  # the CVE's own impact over the document's aggregate
    assert adv.cvss_score == 7.5
    fixed = Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "1:3.0.7-16.el9_2")))
    got = {(e.release, e.package): e for e in adv.affected}
    assert set(got) == {("9", "openssl-libs"), ("9", "openssl"), ("9", "openssl-perl")}  # not the EUS stream
    assert got[("9", "openssl-libs")].ranges == (fixed,)  # epoch from the purl
    assert got[("9", "openssl")].ranges == (fixed,)  # epoch from the NEVRA
    assert got[("9", "openssl-perl")].status == AFFECTED
