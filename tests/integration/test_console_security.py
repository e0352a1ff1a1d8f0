"""Security scanning in the web console: an image version's Security tab (status, counts, the
vulnerabilities with their advisory links, layers and commands, filters, JSON / CSV / SBOM
downloads, "Scan now"), the Vulnerabilities column of the versions list, a namespace's scan policy
and allowlist, and the administrators' Security page.

No scanner runs: scan results are written straight through ScanStore (start / finish with an
inventory and findings encoded by dockyard.scan.codec). The app runs no job worker, so nothing
but the test changes a scan row, and each namespace's scan on push is turned off before images are
pushed to it (else the event dispatch would queue scans behind the test's back).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.config import Settings, load_settings
from dockyard.meta.scans import Policy
from dockyard.registry.scans import summarize
from dockyard.scan.codec import encode_findings, encode_inventory, finding_key
from dockyard.scan.model import Finding, Inventory, LayerInfo, OsInfo, Package
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    PASSWORD,
    add_user,
    app,
    attr,
    config,
    console,
    elements,
    flashes,
    location,
    logged_in,
    make_namespace,
    post,
    refusal,
    registry,
    set_member,
    texts,
)
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    image_manifest,
    no_server_errors,
    push_blob,
    push_index,
    put_manifest,
    sha256,
)

BASE_CMD = "/bin/sh -c #(nop) ADD file:5d673d25da3a in / "
APT_CMD = "RUN /bin/sh -c apt-get update && apt-get install -y openssl curl # buildkit"
PIP_CMD = "RUN /bin/sh -c pip install requests==2.25.0 # buildkit"
DB_DATE = datetime(2025, 3, 14, 6, 30, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """As tests/conftest.py's, without a job worker: only the test writes scan rows."""
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False})


# -- images and their scans ---------------------------------------------------------------------------------
def team(console: TestClient, services: Any, name: str = "team") -> None:
    """A namespace whose pushes are not scanned (the tests write the scans)."""
    make_namespace(console, name)
    services.scan_store.set_policy(name, Policy(scan_on_push=False))


def push_layered(registry: TestClient, repo: str, tag: str, arch: str = "amd64") -> tuple[str, list[str]]:
    """An image of three layers (base, apt-get, pip) with the commands in its history; (digest, layer digests)."""
    history = [{"created": "2024-05-01T10:00:00Z", "created_by": c} for c in (BASE_CMD, APT_CMD, PIP_CMD)]
    cfg = config(arch, history=history)
    layers = [f"{arch} {tag} layer {i}".encode() for i in range(3)]
    push_blob(registry, repo, cfg)
    for layer in layers:
        push_blob(registry, repo, layer)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, layer) for layer in layers])
    assert put_manifest(registry, repo, tag, body).status_code == 201
    return sha256(body), [sha256(layer) for layer in layers]


def inventory(layers: list[str]) -> Inventory:
    return Inventory(
        os=OsInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
        layers=(LayerInfo(layers[0], BASE_CMD), LayerInfo(layers[1], APT_CMD), LayerInfo(layers[2], PIP_CMD)),
        packages=(
            Package("libc6", "2.36-9+deb12u4", "deb", 0, "var/lib/dpkg/status", "glibc", "2.36-9+deb12u4", "amd64"),
            Package("libssl3", "3.0.11-1~deb12u2", "deb", 1, "var/lib/dpkg/status", "openssl", "3.0.11-1~deb12u2"),
            Package("curl", "7.88.1-10+deb12u5", "deb", 1, "var/lib/dpkg/status", "curl", "7.88.1-10+deb12u5"),
            Package("requests", "2.25.0", "pypi", 2,
                    "usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA"),
        ))


FINDINGS = (
    Finding("CVE-2024-5535", ("DSA-5728-1",), "libssl3", "3.0.11-1~deb12u2", "deb", "critical", 1,
            fixed_version="3.0.13-1~deb12u1", source_package="openssl", cvss_score=9.1,
            title="SSL_select_next_proto buffer overread", sources=("debian",)),
    Finding("CVE-2023-38545", (), "curl", "7.88.1-10+deb12u5", "deb", "high", 1, fixed_version=None,
            source_package="curl", fix_status="affected"),
    Finding("GHSA-j8r2-6x86-q33q", ("PYSEC-2023-74",), "requests", "2.25.0", "pypi", "medium", 2,
            fixed_version="2.31.0", url="https://github.com/advisories/GHSA-j8r2-6x86-q33q"),
    Finding("PYSEC-2014-14", (), "requests", "2.25.0", "pypi", "low", 2, fixed_version="2.3.0"),
    Finding("CVE-2010-4756", (), "libc6", "2.36-9+deb12u4", "deb", "unknown", 0, source_package="glibc",
            fix_status="will_not_fix"),
)


def scan_done(services: Any, digest: str, layers: list[str], findings: tuple[Finding, ...] = FINDINGS,
              new: set[tuple[str, str, str]] | None = None) -> None:
    store = services.scan_store
    store.start(digest)
    store.finish(digest, "done", inventory=encode_inventory(inventory(layers)),
                 findings=encode_findings(findings, new), summary=summarize(list(findings)), os_id="debian",
                 os_version="12", db_id="test-db", db_updated_at=DB_DATE, notes=["1 file was larger than the limit"])


def status_of(services: Any, digest: str) -> str:
    return services.scan_store.get_many([digest])[digest].status


def security(client: TestClient, reference: str = "1.0", repo: str = "team/app", **params: str) -> str:
    r = client.get(f"/console/repo/{repo}/-/versions/{reference}/security", params=params)
    assert r.status_code == 200, r.text[:500]
    return r.text


def finding_ids(html: str) -> list[str]:
    return attr(html, "finding-row", "data-id")


def rows_by_id(html: str) -> dict[str, str]:
    return {re.search(r'data-id="([^"]+)"', block).group(1): block  # type: ignore[union-attr]
            for block in re.findall(r'<tr data-testid="finding-row".*?</tr>', html, re.S)}


@pytest.fixture
def bob(app: Starlette, console: TestClient, services: Any) -> TestClient:
    add_user(services)
    return logged_in(app, "bob", PASSWORD)


# -- the Security tab ---------------------------------------------------------------------------------------
def test_security_tab_lists_the_findings(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers, new={finding_key(FINDINGS[0])})

    page = security(console)
    assert texts(page, "security-digest") == [digest]
    assert attr(page, "security-status", "data-status") == ["done"]
    assert texts(page, "scan-status") == ["Scanned"]
    assert texts(page, "scan-os") == ["Debian GNU/Linux 12 (bookworm)"]
    assert texts(page, "scan-db") == ["2025-03-14 06:30:00 UTC"]
    assert texts(page, "scan-time") and texts(page, "scan-notes") == ["1 file was larger than the limit"]
    assert [texts(page, f"count-{s}")[0] for s in ("critical", "high", "medium", "low", "unknown")] == \
        ["Critical 1", "High 1", "Medium 1", "Low 1", "Unknown 1"]
    assert texts(page, "findings-count") == ["5 of 5 vulnerabilities shown"]
    # worst first
    assert finding_ids(page) == ["CVE-2024-5535", "CVE-2023-38545", "GHSA-j8r2-6x86-q33q", "PYSEC-2014-14",
                                 "CVE-2010-4756"]
    rows = rows_by_id(page)
    critical = rows["CVE-2024-5535"]
    assert attr(critical, "finding-link", "href") == ["https://nvd.nist.gov/vuln/detail/CVE-2024-5535"]
    assert texts(critical, "finding-severity") == ["Critical 9.1"]
    assert texts(critical, "finding-package") == ["libssl3 deb source package openssl"]
    assert texts(critical, "finding-versions") == ["3.0.11-1~deb12u2 → fixed in 3.0.13-1~deb12u1"]
    assert texts(critical, "finding-new") == ["new"] and not elements(critical, "finding-allowlisted")
    assert f"sha256:{layers[1][7:19]}" in texts(critical, "finding-layer")[0]
    assert texts(critical, "finding-command") == [APT_CMD.strip()]
    assert attr(critical, "finding-command", "title") == [APT_CMD]
    assert "DSA-5728-1" in critical and "SSL_select_next_proto buffer overread" in critical
    assert not elements(rows["CVE-2023-38545"], "finding-new")
    assert texts(rows["CVE-2023-38545"], "finding-versions") == ["7.88.1-10+deb12u5 → no fix yet"]
    assert not elements(rows["CVE-2023-38545"], "finding-source")  # the source package is the package's name
    assert texts(rows["CVE-2010-4756"], "finding-versions")[0].endswith("will not be fixed")
    # not a CVE: the advisory's own page, else OSV
    assert attr(rows["GHSA-j8r2-6x86-q33q"], "finding-link", "href") == \
        ["https://github.com/advisories/GHSA-j8r2-6x86-q33q"]
    assert attr(rows["PYSEC-2014-14"], "finding-link", "href") == ["https://osv.dev/vulnerability/PYSEC-2014-14"]
    assert texts(rows["PYSEC-2014-14"], "finding-command") == [PIP_CMD.strip()]
    # the packages, with their layers
    assert sorted(attr(page, "package-row", "data-name")) == ["curl", "libc6", "libssl3", "requests"]
    # downloads of an image: the report, the rows, both SBOMs
    assert attr(page, "export-json", "href") == ["/console/repo/team/app/-/versions/1.0/security.json"]
    assert attr(page, "export-csv", "href") == ["/console/repo/team/app/-/versions/1.0/security.csv"]
    assert attr(page, "sbom-cyclonedx", "href") == ["/console/repo/team/app/-/versions/1.0/sbom.cdx.json"]
    assert attr(page, "sbom-spdx", "href") == ["/console/repo/team/app/-/versions/1.0/sbom.spdx.json"]
    assert elements(page, "scan-now")  # the administrator may push
    assert attr(page, "security-results", "data-active") == ["false"]

    # The same page by digest (where a blocked pull's message links), and from the version page.
    by_digest = security(console, digest)
    assert finding_ids(by_digest) == finding_ids(page)
    version = console.get("/console/repo/team/app/-/versions/1.0").text
    assert attr(version, "tab-version-security", "href") == ["/console/repo/team/app/-/versions/1.0/security"]
    assert texts(version, "vulns-critical") == ["C Critical 1"]
    assert attr(version, "version-vulns", "data-status") == ["done"]


def test_allowlisted_findings_are_marked_and_not_counted(console: TestClient, registry: TestClient,
                                                         services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    r = post(console, "/console/namespaces/team/allowlist", vulnerability="DSA-5728-1", reason="not reachable")
    assert location(r) == "/console/namespaces/team#allowlist"
    page = security(console)
    rows = rows_by_id(page)
    assert texts(rows["CVE-2024-5535"], "finding-allowlisted") == ["allowlisted"]  # matched by an alias
    assert texts(page, "count-critical") == ["Critical 0"]
    assert "not counted" in page
    versions = console.get("/console/repo/team/app/-/versions").text
    assert not elements(versions, "vulns-critical") and texts(versions, "vulns-high") == ["H High 1"]


def test_security_filters(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    assert finding_ids(security(console, severity="high")) == ["CVE-2023-38545"]
    assert finding_ids(security(console, fixed="1")) == ["CVE-2024-5535", "GHSA-j8r2-6x86-q33q", "PYSEC-2014-14"]
    assert finding_ids(security(console, q="REQUESTS")) == ["GHSA-j8r2-6x86-q33q", "PYSEC-2014-14"]
    assert finding_ids(security(console, q="pysec-2023")) == ["GHSA-j8r2-6x86-q33q"]  # an alias
    assert finding_ids(security(console, q="openssl")) == ["CVE-2024-5535"]  # the source package
    assert finding_ids(security(console, q="requests", fixed="1", severity="low")) == ["PYSEC-2014-14"]
    nothing = security(console, q="no-such-thing")
    assert finding_ids(nothing) == [] and texts(nothing, "findings-empty") == ["No vulnerability matches the filters."]
    assert texts(nothing, "findings-count") == ["0 of 5 vulnerabilities shown"]
    # an unknown severity is no filter; the form shows what is applied
    assert len(finding_ids(security(console, severity="catastrophic"))) == 5
    page = security(console, severity="medium", fixed="1", q="req")
    assert '<option value="medium" selected>' in page and 'value="req"' in page
    assert attr(page, "export-csv", "href") == \
        ["/console/repo/team/app/-/versions/1.0/security.csv?severity=medium&fixed=1&q=req"]

    partial = console.get("/console/repo/team/app/-/versions/1.0/security", params={"severity": "critical"},
                          headers={"HX-Request": "true", "HX-Target": "security-results"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'id="security-results"' in partial.text
    assert finding_ids(partial.text) == ["CVE-2024-5535"]


def test_exports(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers, new={finding_key(FINDINGS[2])})
    base = "/console/repo/team/app/-/versions/1.0"

    r = console.get(f"{base}/security.csv", params={"fixed": "1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="vulnerabilities-team-app-1.0.csv"' in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["id"] for row in table] == ["CVE-2024-5535", "GHSA-j8r2-6x86-q33q", "PYSEC-2014-14"]
    first = table[0]
    assert first["severity"] == "critical" and first["package"] == "libssl3" and first["source_package"] == "openssl"
    assert first["installed_version"] == "3.0.11-1~deb12u2" and first["fixed_version"] == "3.0.13-1~deb12u1"
    assert first["layer"] == layers[1] and first["layer_created_by"] == APT_CMD
    assert first["advisory"] == "https://nvd.nist.gov/vuln/detail/CVE-2024-5535" and first["aliases"] == "DSA-5728-1"
    assert [row["new_since_last_scan"] for row in table] == ["no", "yes", "no"]
    assert len(list(csv.DictReader(io.StringIO(console.get(f"{base}/security.csv").content.decode("utf-8-sig"))))) == 5

    r = console.get(f"{base}/security.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["digest"] == digest and doc["status"] == "done"
    assert doc["summary"] == {"critical": 1, "high": 1, "medium": 1, "low": 1, "unknown": 1}
    assert [v["id"] for v in doc["vulnerabilities"]][:2] == ["CVE-2024-5535", "CVE-2023-38545"]
    assert doc["vulnerabilities"][0]["layer_created_by"] == APT_CMD
    assert doc["os"] == {"id": "debian", "version": "12"}

    r = console.get(f"{base}/sbom.cdx.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.cyclonedx+json")
    assert 'filename="sbom-team-app-1.0.cdx.json"' in r.headers["content-disposition"]
    names = {c["name"] for c in json.loads(r.content)["components"]}
    assert {"libssl3", "curl", "requests", "libc6"} <= names
    r = console.get(f"{base}/sbom.spdx.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/spdx+json")
    assert {"libssl3", "requests"} <= {p["name"] for p in json.loads(r.content)["packages"]}

    # not scanned: no SBOM, an error page
    push_layered(registry, "team/app", "2.0")
    assert console.get("/console/repo/team/app/-/versions/2.0/sbom.cdx.json").status_code == 404
    assert console.get(f"{base}/sbom.xml").status_code == 404
    assert console.post(f"{base}/security.csv").status_code in (403, 404)  # only GET (and no CSRF token)


def test_scan_states(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    store = services.scan_store

    page = security(console)
    assert attr(page, "security-status", "data-status") == ["not_scanned"]
    assert texts(page, "scan-none") and not elements(page, "findings") and not elements(page, "sbom-cyclonedx")
    assert not elements(console.get("/console/repo/team/app/-/versions").text, "vulns-none")

    # Scan now: queued (a job for the worker), and the results poll themselves while it waits.
    r = post(console, "/console/repo/team/app/-/versions/1.0/security/scan")
    assert location(r) == "/console/repo/team/app/-/versions/1.0/security"
    assert flashes(console, r, "ok") == ["Scan of 1.0 queued."]
    assert status_of(services, digest) == "queued"
    page = security(console)
    assert attr(page, "security-status", "data-status") == ["queued"]
    assert attr(page, "security-results", "data-active") == ["true"] and 'hx-trigger="every 3s"' in page
    assert texts(page, "scan-waiting")

    store.start(digest)
    assert texts(security(console), "scan-status") == ["Scanning…"]

    store.finish(digest, "failed", error="layer sha256:abc is not a tar archive")
    page = security(console)
    assert attr(page, "security-status", "data-status") == ["failed"]
    assert texts(page, "scan-error") == ["The scan failed: layer sha256:abc is not a tar archive"]
    assert attr(page, "security-results", "data-active") == ["false"]

    store.start(digest)
    store.finish(digest, "unsupported", error="not a container image (application/vnd.example+json)")
    page = security(console)
    assert texts(page, "scan-status") == ["Not scannable"]
    assert "application/vnd.example+json" in texts(page, "scan-error")[0]

    # A scan queued again keeps the previous results readable.
    scan_done(services, digest, layers)
    with store.db.write() as conn:
        store.queue(conn, digest, "team/app")
    page = security(console)
    assert texts(page, "scan-previous") and len(finding_ids(page)) == 5
    versions = console.get("/console/repo/team/app/-/versions").text
    assert attr(versions, "version-vulns", "data-status") == ["queued"]
    assert "Queued for scanning" in texts(versions, "version-vulns")[0]


def test_security_of_an_index(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    amd64, amd64_layers = push_layered(registry, "team/app", "amd64-build", "amd64")
    arm64, _ = push_layered(registry, "team/app", "arm64-build", "arm64")
    bodies = {d: registry.get(f"/v2/team/app/manifests/{d}").content for d in (amd64, arm64)}
    index, _ = push_index(registry, "team/app", "multi", [(amd64, bodies[amd64]), (arm64, bodies[arm64])])
    scan_done(services, amd64, amd64_layers)

    page = security(console, "multi")
    assert texts(page, "security-digest") == [index]
    assert attr(page, "security-status", "data-status") == ["not_scanned"]  # one platform is not
    sections = elements(page, "scan-section")
    assert [(s["attrs"]["data-digest"], s["attrs"]["data-status"]) for s in sections] == \
        [(amd64, "done"), (arm64, "not_scanned")]
    assert [s["attrs"]["data-platform"] for s in sections] == ["linux/arch0", "linux/arch1"]
    assert len(finding_ids(page)) == 5
    assert attr(page, "platform-security", "href") == [
        f"/console/repo/team/app/-/versions/{d.replace(':', '%3A')}/security" for d in (amd64, arm64)]
    # SBOMs per platform only
    assert attr(page, "sbom-cyclonedx", "href") == \
        [f"/console/repo/team/app/-/versions/{amd64.replace(':', '%3A')}/sbom.cdx.json"]
    assert console.get("/console/repo/team/app/-/versions/multi/sbom.cdx.json").status_code == 422
    table = list(csv.DictReader(io.StringIO(
        console.get("/console/repo/team/app/-/versions/multi/security.csv").content.decode("utf-8-sig"))))
    assert {row["platform"] for row in table} == {"linux/arch0"} and len(table) == 5
    doc = console.get("/console/repo/team/app/-/versions/multi/security.json").json()
    assert [p["status"] for p in doc["platforms"]] == ["done", "not_scanned"]

    versions = console.get("/console/repo/team/app/-/versions").text
    found = re.search(r'<tr data-testid="version-row" data-tag="multi".*?</tr>', versions, re.S)
    assert found
    block = found.group(0)
    assert attr(block, "version-vulns", "data-status") == ["not_scanned"]
    assert texts(block, "vulns-critical") == ["C Critical 1"] and "Not scanned" in texts(block, "version-vulns")[0]


def test_versions_list_summarises_each_tag(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    store = services.scan_store
    digests = {}
    for tag in ("vulnerable", "clean", "waiting", "broken", "unscanned"):
        digests[tag], layers = push_layered(registry, "team/app", tag)
        if tag == "vulnerable":
            scan_done(services, digests[tag], layers)
        elif tag == "clean":
            scan_done(services, digests[tag], layers, findings=())
    store.request(digests["waiting"], "team/app")
    store.start(digests["broken"])
    store.finish(digests["broken"], "failed", error="boom")

    page = console.get("/console/repo/team/app/-/versions").text
    assert "<th scope=\"col\">Vulnerabilities</th>" in page
    rows = {re.search(r'data-tag="([^"]+)"', b).group(1): b  # type: ignore[union-attr]
            for b in re.findall(r'<tr data-testid="version-row".*?</tr>', page, re.S)}
    status = {tag: attr(block, "version-vulns", "data-status") for tag, block in rows.items()}
    assert status == {"vulnerable": ["done"], "clean": ["done"], "waiting": ["queued"], "broken": ["failed"],
                      "unscanned": ["not_scanned"]}
    assert [texts(rows["vulnerable"], f"vulns-{s}") for s in ("critical", "high", "medium", "low", "unknown")] == \
        [["C Critical 1"], ["H High 1"], ["M Medium 1"], ["L Low 1"], ["U Unknown 1"]]
    assert texts(rows["clean"], "vulns-none") == ["None found"]
    assert texts(rows["broken"], "version-vulns") == ["Scan failed"]
    assert texts(rows["unscanned"], "version-vulns") == ["Not scanned"]
    assert attr(rows["vulnerable"], "version-vulns", "href") == \
        ["/console/repo/team/app/-/versions/vulnerable/security"]


def test_who_sees_and_scans(app: Starlette, console: TestClient, registry: TestClient, services: Any,
                            bob: TestClient) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    base = "/console/repo/team/app/-/versions/1.0"
    # not a member of a private namespace: nothing there
    for path in ("security", "security.json", "security.csv", "sbom.cdx.json"):
        assert bob.get(f"{base}/{path}").status_code == 404, path
    # a guest reads the report but may not scan
    set_member(console, "team", "bob", "guest")
    page = security(bob)
    assert len(finding_ids(page)) == 5 and not elements(page, "scan-now")
    assert bob.get(f"{base}/security.csv").status_code == 200
    assert "may not push" in refusal(bob, post(bob, f"{base}/security/scan"))
    assert status_of(services, digest) == "done"
    # a developer may
    set_member(console, "team", "bob", "developer")
    assert elements(security(bob), "scan-now")
    assert location(post(bob, f"{base}/security/scan")) == f"{base}/security"
    assert status_of(services, digest) == "queued"
    # without the CSRF token, nothing
    assert bob.post(f"{base}/security/scan").status_code == 403


def test_a_blocked_pull_names_the_security_page(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    r = post(console, "/console/namespaces/team/security", block_severity="high")
    assert location(r) == "/console/namespaces/team#security"
    denied = registry.get("/v2/team/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert denied.status_code == 403
    link = re.search(r"https?://\S+/security", denied.text).group(0)  # type: ignore[union-attr]
    path = "/console/" + link.split("/console/", 1)[1]
    assert path == f"/console/repo/team/app/-/versions/{digest}/security"
    assert finding_ids(security(console, digest))[0] == "CVE-2024-5535"


# -- a namespace's policy and allowlist ----------------------------------------------------------------------
def test_namespace_security_settings(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    page = console.get("/console/namespaces/team").text
    assert elements(page, "policy-form")
    assert 'name="scan_on_push" data-testid="policy-scan-on-push" checked' in page  # the default
    r = post(console, "/console/namespaces/team/security", block_severity="critical", block_unscanned="on")
    assert flashes(console, r, "ok") == ["Security settings of team saved."]
    assert services.scan_store.policy("team") == Policy(scan_on_push=False, block_severity="critical",
                                                        block_unscanned=True)
    page = console.get("/console/namespaces/team").text
    assert '<option value="critical" selected>' in page
    assert 'data-testid="policy-block-unscanned" checked' in page
    assert 'data-testid="policy-scan-on-push" checked' not in page
    r = post(console, "/console/namespaces/team/security", scan_on_push="on", block_severity="")
    assert services.scan_store.policy("team") == Policy(scan_on_push=True, block_severity=None, block_unscanned=False)
    assert "block_severity" in refusal(console, post(console, "/console/namespaces/team/security",
                                                     block_severity="dreadful"))
    assert services.scan_store.policy("team") == Policy()
    assert post(console, "/console/namespaces/nowhere/security", block_severity="low").status_code in (303, 404)


@pytest.mark.parametrize("role", ["guest", "developer"])
def test_only_owners_change_the_security_settings(console: TestClient, services: Any, bob: TestClient,
                                                  role: str) -> None:
    make_namespace(console, "team")
    set_member(console, "team", "bob", role)
    services.scan_store.allow("team", "CVE-2024-1111", "accepted", None, "admin")
    page = bob.get("/console/namespaces/team").text
    assert not elements(page, "policy-form") and not elements(page, "allow-form") and not elements(page, "allow-remove")
    assert "Scan on push" in texts(page, "policy-facts")[0]
    assert attr(page, "allow-row", "data-vulnerability") == ["CVE-2024-1111"]
    assert "owner" in refusal(bob, post(bob, "/console/namespaces/team/security", block_severity="low"))
    assert services.scan_store.policy("team") == Policy()
    assert "owner" in refusal(bob, post(bob, "/console/namespaces/team/allowlist", vulnerability="CVE-2024-2222",
                                        reason="please"))
    entry = services.scan_store.allowlist("team", system=False)[0]
    assert "owner" in refusal(bob, post(bob, f"/console/namespaces/team/allowlist/{entry.id}/remove"))
    assert [e.vulnerability for e in services.scan_store.allowlist("team", system=False)] == ["CVE-2024-1111"]
    # the owner may
    set_member(console, "team", "bob", "owner")
    r = post(bob, "/console/namespaces/team/security", block_severity="low")
    assert flashes(bob, r, "ok") == ["Security settings of team saved."]
    assert services.scan_store.policy("team").block_severity == "low"


def test_namespace_allowlist(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    next_year = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    r = post(console, "/console/namespaces/team/allowlist", vulnerability=" CVE-2024-3094 ",
             reason="xz is not in the image's path", expires=next_year)
    assert location(r) == "/console/namespaces/team#allowlist"
    assert flashes(console, r, "ok") == ["CVE-2024-3094 allowlisted."]
    post(console, "/console/namespaces/team/allowlist", vulnerability="GHSA-xxxx-yyyy-zzzz", reason="dev only")
    services.scan_store.allow("team", "CVE-2020-0001", "long ago", datetime(2021, 1, 1, tzinfo=UTC), "admin")

    page = console.get("/console/namespaces/team").text
    rows = elements(page, "allow-row")
    assert [r["attrs"]["data-vulnerability"] for r in rows] == ["CVE-2020-0001", "CVE-2024-3094",
                                                                "GHSA-xxxx-yyyy-zzzz"]
    assert [r["attrs"]["data-active"] for r in rows] == ["false", "true", "true"]
    assert texts(page, "allow-state") == ["expired", "active", "active"]
    assert f"{next_year} 23:59:59 UTC" in rows[1]["text"] and "admin" in rows[1]["text"]
    assert "xz is not in the image&#39;s path" in page

    for fields, why in (({"vulnerability": "not an id!", "reason": "x"}, "advisory id"),
                        ({"vulnerability": "CVE-2024-1", "reason": "  "}, "reason"),
                        ({"vulnerability": "CVE-2024-1", "reason": "x", "expires": "2020-01-01"}, "in the past"),
                        ({"vulnerability": "CVE-2024-1", "reason": "x", "expires": "tomorrow"}, "2030-12-31")):
        assert why in refusal(console, post(console, "/console/namespaces/team/allowlist", **fields)), fields
    assert len(services.scan_store.allowlist("team", system=False)) == 3

    entry = rows[1]["attrs"]["data-id"]
    r = post(console, f"/console/namespaces/team/allowlist/{entry}/remove")
    assert flashes(console, r, "ok") == ["Allowlist entry removed."]
    assert [e.vulnerability for e in services.scan_store.allowlist("team", system=False)] == \
        ["CVE-2020-0001", "GHSA-xxxx-yyyy-zzzz"]
    assert "not found" in refusal(console, post(console, f"/console/namespaces/team/allowlist/{entry}/remove"))
    assert refusal(console, post(console, "/console/namespaces/team/allowlist/abc/remove"))
    # an entry of another namespace is not this one's to remove
    make_namespace(console, "other")
    other = services.scan_store.allow("other", "CVE-2024-9999", "x", None, "admin")
    assert refusal(console, post(console, f"/console/namespaces/team/allowlist/{other.id}/remove"))
    assert services.scan_store.allowlist("other", system=False)


# -- administrators ----------------------------------------------------------------------------------------
def test_admin_security_page(console: TestClient, services: Any, bob: TestClient) -> None:
    make_namespace(console, "team")
    page = console.get("/console/security")
    assert page.status_code == 200
    assert attr(page.text, "nav-security", "aria-current") == ["page"]
    assert attr(page.text, "vulndb-present", "data-present") == ["false"]  # no database imported here
    assert "dockyard vulndb update" in texts(page.text, "vulndb-hint")[0]
    assert attr(page.text, "scan-count", "data-status") == ["queued", "running", "done", "failed", "unsupported"]

    services.scan_store.allow("team", "CVE-2024-1111", "namespace entry", None, "admin")
    r = post(console, "/console/security/allowlist", vulnerability="CVE-2023-44487", reason="HTTP/2 not exposed")
    assert location(r) == "/console/security#allowlist"
    assert flashes(console, r, "ok") == ["CVE-2023-44487 allowlisted."]
    page = console.get("/console/security").text
    assert attr(page, "allow-row", "data-vulnerability") == ["CVE-2023-44487"]  # the system-wide ones only
    assert [e.vulnerability for e in services.scan_store.allowlist(None)] == ["CVE-2023-44487"]
    entry = attr(page, "allow-row", "data-id")[0]

    # not an administrator: no menu entry, no page, no change
    assert not elements(bob.get("/console/repositories").text, "nav-security")
    assert bob.get("/console/security").status_code == 403
    assert refusal(bob, post(bob, "/console/security/allowlist", vulnerability="CVE-2024-2", reason="x"))
    assert refusal(bob, post(bob, f"/console/security/allowlist/{entry}/remove"))
    assert [e.vulnerability for e in services.scan_store.allowlist(None)] == ["CVE-2023-44487"]

    r = post(console, f"/console/security/allowlist/{entry}/remove")
    assert flashes(console, r, "ok") == ["Allowlist entry removed."]
    assert services.scan_store.allowlist(None) == []


def test_admin_security_page_counts_scans(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    other, _ = push_layered(registry, "team/app", "2.0")
    services.scan_store.request(other, "team/app")
    page = console.get("/console/security").text
    counts = {e["attrs"]["data-status"]: e["text"] for e in elements(page, "scan-count")}
    assert counts["done"].endswith("1") and counts["queued"].endswith("1") and counts["failed"].endswith("0")


def test_chinese_security_tab(console: TestClient, registry: TestClient, services: Any) -> None:
    team(console, services)
    digest, layers = push_layered(registry, "team/app", "1.0")
    scan_done(services, digest, layers)
    console.cookies.set("dockyard_lang", "zh-CN")
    page = security(console)
    assert "漏洞" in page and "安全" in page
    assert texts(page, "count-critical") == ["严重 1"]
    assert texts(console.get("/console/security").text, "vulndb-hint")[0].startswith("在服务器上")


def test_admin_security_page_shows_the_advisory_database(console: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    imported = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
    report = {"path": "/data/vulndb/advisories.sqlite", "present": True, "db_id": "db-20250314", "updated_at": imported,
              "sources": [{"name": "debian", "kind": "debian-security-tracker", "records": 41234,
                           "imported_at": imported, "newest": "2025-03-13"},
                          {"name": "osv-pypi", "kind": "osv", "records": 15012, "imported_at": imported.isoformat(),
                           "newest": None}],
              "scans": {"done": 3, "failed": 1}}
    monkeypatch.setattr("dockyard.app.vulndb_report", lambda settings, store: report)
    page = console.get("/console/security").text
    assert attr(page, "vulndb-present", "data-present") == ["true"]
    assert texts(page, "vulndb-id") == ["db-20250314"]
    assert texts(page, "vulndb-updated")[0].startswith("2025-03-14 06:00:00 UTC")
    sources = {e["attrs"]["data-name"]: e["text"] for e in elements(page, "vulndb-source")}
    assert "debian-security-tracker" in sources["debian"] and "41234" in sources["debian"]
    assert "2025-03-13" in sources["debian"]
    assert sources["osv-pypi"].endswith("—")
    counts = {e["attrs"]["data-status"]: e["text"] for e in elements(page, "scan-count")}
    assert counts == {"queued": "Queued for scanning0", "running": "Scanning…0", "done": "Scanned3",
                      "failed": "Scan failed1", "unsupported": "Not scannable0"}  # (cells run together)
