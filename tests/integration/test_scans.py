"""Scanning through the application (registry/scans.py, management/scans.py, the scan API) on
SQLite and PostgreSQL: images pushed over /v2 made of layers the test writes, scanned by the job
handler against the vendored real advisory data (tests/data/vulndata), reports, SBOM referrers,
pull policies with the allowlist, index fan-out, re-evaluation without the layers, failures.

The embedded worker is off: the tests dispatch events and run the scan jobs' handler themselves,
so every step is deterministic. The worker itself running scans is covered end to end
(tests/e2e/test_scan_e2e.py).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete
from starlette.testclient import TestClient

from dockyard.config import Settings, load_settings
from dockyard.jobs.kinds import SCAN_REEVALUATE
from dockyard.meta.scans import SCAN_IMAGE
from dockyard.meta.tables import scans
from dockyard.scan.vulndb import import_paths
from dockyard.storage.layout import blob_path
from tests.integration.helpers import descriptor, dumps, image_manifest, push_blob, put_manifest, run_jobs, sha256
from tests.unit.scan.layerkit import File, dist_info, dpkg_stanza, dpkg_status, layer, os_release

VULNDATA = Path(__file__).resolve().parents[1] / "data" / "vulndata"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
SPDX = "application/spdx+json"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False},
                         scan={"db_path": str(tmp_path / "vulndb" / "advisories.sqlite")})


def import_vulndata(settings: Settings, *parts: str) -> str:
    paths = [VULNDATA / p for p in parts] if parts else [VULNDATA]
    return import_paths(settings.vulndb_path, paths).db_id


def base_layer(openssh: str = "1:9.2p1-2+deb12u2") -> bytes:
    return layer([
        File("etc/os-release", os_release("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")),
        File("var/lib/dpkg/status", dpkg_status(
            dpkg_stanza("base-files", "12.4+deb12u5"),
            dpkg_stanza("libc6", "2.36-9+deb12u3", source="glibc"),
            dpkg_stanza("openssh-client", openssh, source="openssh"),
            dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"))),
    ])


def python_layer(urllib3: str = "1.26.5") -> bytes:
    return layer([*dist_info("urllib3", urllib3), *dist_info("requests", "2.31.0")])


def push_layers(client: TestClient, repo: str, tag: str | None, layers: list[bytes], commands: list[str],
                arch: str = "amd64") -> tuple[str, bytes, list[str]]:
    """Push an image of these layers; returns (manifest digest, manifest bytes, layer digests)."""
    config = dumps({"architecture": arch, "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [sha256(b) for b in layers]},
                    "history": [{"created_by": c} for c in commands]})
    push_blob(client, repo, config)
    digests = [push_blob(client, repo, b) for b in layers]
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, b) for b in layers])
    r = put_manifest(client, repo, tag or sha256(body), body)
    assert r.status_code == 201, r.text
    return sha256(body), body, digests


def run_scans(services: Any) -> int:
    """Dispatch events, then run every queued scan job through its handler, as a worker would."""
    return len(run_jobs(services, (SCAN_IMAGE, SCAN_REEVALUATE), raise_errors=True))


def vulns(client: TestClient, repo: str, ref: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/repositories/{repo}/manifests/{ref}/vulnerabilities")
    assert r.status_code == 200, r.text
    return r.json()


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in doc["vulnerabilities"]}


def test_a_pushed_image_is_scanned_with_findings_per_layer(app_client: TestClient, services: Any,
                                                          settings: Settings) -> None:
    import_vulndata(settings)
    base, py = base_layer(), python_layer()
    digest, _, layers = push_layers(app_client, "sec/app", "1.0", [base, py],
                                    ["RUN apt-get install -y openssh-client", "RUN pip install urllib3==1.26.5"])
    services.events.dispatch_all()
    assert vulns(app_client, "sec/app", digest)["status"] == "queued"  # scan on push, by default
    assert run_scans(services) == 1
    doc = vulns(app_client, "sec/app", "1.0")
    assert doc["status"] == "done" and doc["digest"] == digest
    assert doc["os"] == {"id": "debian", "version": "12"}
    found = by_id(doc)
    ssh = found["CVE-2024-6387"]
    assert ssh["package"] == "openssh-client" and ssh["source_package"] == "openssh"
    assert ssh["installed_version"] == "1:9.2p1-2+deb12u2" and ssh["fixed_version"] == "1:9.2p1-2+deb12u3"
    assert ssh["layer"] == layers[0] and ssh["layer_created_by"] == "RUN apt-get install -y openssh-client"
    assert "DSA-5724-1" in ssh["aliases"] and ssh["ecosystem"] == "deb"
    urllib3 = found["CVE-2023-43804"]
    assert urllib3["severity"] == "high" and urllib3["fixed_version"] == "1.26.17" and urllib3["layer"] == layers[1]
    assert {"GHSA-v845-jxx5-vc9f", "PYSEC-2023-192"} <= set(urllib3["aliases"])  # one CVE, reported once
    assert [v["id"] for v in doc["vulnerabilities"]].count("CVE-2023-43804") == 1
    # Fixed versions are not reported: libc6 and libssl3 are at the fixed ones; requests 2.31.0 too.
    assert not {"CVE-2023-4911", "CVE-2023-5363", "CVE-2023-32681"} & set(found)
    assert doc["summary"]["high"] >= 1 and sum(doc["summary"].values()) == len(doc["vulnerabilities"])

    packages = app_client.get(f"/api/v1/repositories/sec/app/manifests/{digest}/packages").json()["packages"]
    names = {(p["name"], p["ecosystem"]): p for p in packages}
    assert names[("openssh-client", "deb")]["purl"].startswith("pkg:deb/debian/openssh-client@1:9.2p1-2")
    assert names[("urllib3", "pypi")]["layer"] == layers[1]

    # The SBOMs are referrers of the image, pushed by the scanner (and not scanned themselves).
    referrers = app_client.get(f"/v2/sec/app/referrers/{digest}").json()["manifests"]
    assert sorted(r["artifactType"] for r in referrers) == [SPDX, CYCLONEDX] or \
        sorted(r["artifactType"] for r in referrers) == sorted([CYCLONEDX, SPDX])
    cdx = next(r for r in referrers if r["artifactType"] == CYCLONEDX)
    manifest = app_client.get(f"/v2/sec/app/manifests/{cdx['digest']}", headers={"Accept": OCI_MANIFEST}).json()
    assert manifest["subject"]["digest"] == digest
    bom = app_client.get(f"/v2/sec/app/blobs/{manifest['layers'][0]['digest']}").json()
    assert bom["bomFormat"] == "CycloneDX" and any(c["name"] == "urllib3" for c in bom["components"])
    assert run_scans(services) == 0
    assert services.scan_store.get(cdx["digest"]) is None

    sbom = app_client.get(f"/api/v1/repositories/sec/app/manifests/{digest}/sbom", params={"format": "spdx"})
    assert sbom.status_code == 200 and sbom.json()["spdxVersion"] == "SPDX-2.3"


def test_a_pull_policy_blocks_until_allowlisted_and_again_when_the_entry_expires(
        app_client: TestClient, services: Any, settings: Settings) -> None:
    import_vulndata(settings)
    digest, _, _ = push_layers(app_client, "pol/app", "1.0", [base_layer(), python_layer()], ["a", "b"])
    run_scans(services)
    r = app_client.put("/api/v1/namespaces/pol/scan-policy", json={"block_severity": "high"})
    assert r.status_code == 200 and r.json()["block_severity"] == "high" and r.json()["scan_on_push"] is True
    blocked = app_client.get("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert blocked.status_code == 403
    error = blocked.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "1 vulnerability of severity high or higher" in error["message"]
    assert f"/console/repo/pol/app/-/versions/{digest}/security" in error["message"]
    assert app_client.head("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 200

    until = datetime.now(timezone.utc) + timedelta(hours=1)
    r = app_client.post("/api/v1/namespaces/pol/allowlist",
                        json={"vulnerability": "CVE-2023-43804", "reason": "not reachable", "expires_at": until.isoformat()})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["active"] is True
    assert app_client.get("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 200
    report = vulns(app_client, "pol/app", "1.0")
    assert by_id(report)["CVE-2023-43804"]["allowlisted"] is True and report["summary"]["high"] == 0

    # The entry expires: it stops applying, and is listed as expired.
    from sqlalchemy import update

    from dockyard.meta.tables import scan_allowlist
    with services.db.write() as conn:
        conn.execute(update(scan_allowlist).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert app_client.get("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 403
    listed = app_client.get("/api/v1/namespaces/pol/allowlist").json()["items"]
    assert [(e["vulnerability"], e["active"]) for e in listed] == [("CVE-2023-43804", False)]
    audit = [(e.action, e.target) for e in services.audit.query(limit=1000)]
    assert ("namespace.scan_policy", "pol") in audit and ("allowlist.add", "pol") in audit

    # A system-wide entry applies in every namespace.
    r = app_client.post("/api/v1/allowlist", json={"vulnerability": "GHSA-v845-jxx5-vc9f", "reason": "accepted"})
    assert r.status_code == 201
    assert app_client.get("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert app_client.delete(f"/api/v1/allowlist/{r.json()['id']}").status_code == 204
    assert app_client.get("/v2/pol/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 403

    # Unscanned images are blocked when the policy says so; artifacts never are.
    app_client.put("/api/v1/namespaces/pol/scan-policy", json={"block_severity": None, "block_unscanned": True})
    fresh, _, _ = push_layers(app_client, "pol/other", "1", [base_layer("1:9.2p1-2+deb12u3")], ["x"])
    r = app_client.get("/v2/pol/other/manifests/1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 403 and "has not been scanned yet" in r.json()["errors"][0]["message"]
    run_scans(services)
    assert app_client.get("/v2/pol/other/manifests/1", headers={"Accept": OCI_MANIFEST}).status_code == 200


def test_an_index_fans_out_to_its_platforms(app_client: TestClient, services: Any, settings: Settings) -> None:
    import_vulndata(settings)
    amd, amd_body, _ = push_layers(app_client, "multi/app", None, [base_layer()], ["amd"], arch="amd64")
    arm, arm_body, _ = push_layers(app_client, "multi/app", None, [base_layer("1:9.2p1-2+deb12u3")], ["arm"],
                                   arch="arm64")
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, amd_body, platform={"os": "linux", "architecture": "amd64"}),
        descriptor(OCI_MANIFEST, arm_body, platform={"os": "linux", "architecture": "arm64"})]})
    assert put_manifest(app_client, "multi/app", "1.0", index, OCI_INDEX).status_code == 201
    run_scans(services)
    doc = vulns(app_client, "multi/app", "1.0")
    assert doc["status"] == "done" and doc["digest"] == sha256(index)
    platforms = {p["platform"]: p for p in doc["platforms"]}
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    assert platforms["linux/amd64"]["digest"] == amd and "CVE-2024-6387" in by_id(platforms["linux/amd64"])
    assert platforms["linux/arm64"]["digest"] == arm and "CVE-2024-6387" not in by_id(platforms["linux/arm64"])
    assert doc["summary"] == platforms["linux/amd64"]["summary"] or sum(doc["summary"].values()) >= 1
    packages = app_client.get("/api/v1/repositories/multi/app/manifests/1.0/packages").json()
    assert {p["platform"] for p in packages["platforms"]} == {"linux/amd64", "linux/arm64"}
    # A platform never scanned (its row gone): the index is not_scanned, as in the console, not done.
    with services.db.write() as conn:
        conn.execute(delete(scans).where(scans.c.digest == arm))
    doc = vulns(app_client, "multi/app", "1.0")
    assert doc["status"] == "not_scanned", [p["status"] for p in doc["platforms"]]


def test_a_new_advisory_database_flags_stored_images_without_reading_their_layers(
        app_client: TestClient, services: Any, settings: Settings) -> None:
    import_vulndata(settings, "debian-vuln-list-tracker")  # no PyPI advisories yet
    digest, _, layers = push_layers(app_client, "re/app", "1.0", [base_layer(), python_layer()], ["a", "b"])
    run_scans(services)
    before = vulns(app_client, "re/app", "1.0")
    assert "CVE-2023-43804" not in by_id(before) and "CVE-2024-6387" in by_id(before)
    assert not any(v["new_since_last_scan"] for v in before["vulnerabilities"])
    assert services.scans.database_changed() is False  # this database was evaluated already

    # The layers are gone from the store: a re-evaluation must not need them.
    for blob in layers:
        blob_path(settings.blob_root, blob).unlink()
    import_vulndata(settings, "osv-pypi", "osv-ghsa-pypi")
    assert services.scans.database_changed() is True
    services.jobs.submit(SCAN_REEVALUATE, unique_key=SCAN_REEVALUATE)
    assert run_scans(services) == 1
    after = vulns(app_client, "re/app", "1.0")
    found = by_id(after)
    assert found["CVE-2023-43804"]["new_since_last_scan"] is True
    assert found["CVE-2023-43804"]["layer"] == layers[1]
    assert found["CVE-2024-6387"]["new_since_last_scan"] is False
    assert after["scanned_at"] == before["scanned_at"] and after["evaluated_at"] != before["evaluated_at"]
    assert services.scans.database_changed() is False


def test_failures_and_unsupported_content(app_client: TestClient, services: Any, settings: Settings) -> None:
    import_vulndata(settings, "debian-vuln-list-tracker")
    settings.scan.max_layer_bytes = 1 << 20
    bomb = layer([File("var/zeros", bytes(8 << 20))])
    digest, _, _ = push_layers(app_client, "bad/app", "bomb", [bomb], ["dd"])
    run_scans(services)
    doc = vulns(app_client, "bad/app", "bomb")
    assert doc["status"] == "failed" and "scan.max_layer_bytes" in doc["error"]
    assert doc["vulnerabilities"] == []

    # An artifact (not an image config) is unsupported; a layer that is not a tar too.
    config = b"{}"
    push_blob(app_client, "bad/app", config)
    blob = push_blob(app_client, "bad/app", b"just some bytes")
    body = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-thing",
                  "config": descriptor("application/vnd.oci.empty.v1+json", config),
                  "layers": [descriptor("application/x-thing", b"just some bytes")]})
    assert put_manifest(app_client, "bad/app", "artifact", body).status_code == 201
    notar, _, _ = push_layers(app_client, "bad/app", "notar", [b"\x00\x01 not a tar at all" * 100], ["?"])
    run_scans(services)
    assert vulns(app_client, "bad/app", "artifact")["status"] == "unsupported"
    doc = vulns(app_client, "bad/app", "notar")
    assert doc["status"] in ("unsupported", "failed") and doc["error"]
    assert blob


def test_who_may_scan_and_read(app_client: TestClient, anon_client: TestClient, services: Any,
                               settings: Settings) -> None:
    import_vulndata(settings, "debian-vuln-list-tracker")
    digest, _, _ = push_layers(app_client, "acl/app", "1.0", [base_layer()], ["a"])
    run_scans(services)
    assert anon_client.get(f"/api/v1/repositories/acl/app/manifests/{digest}/vulnerabilities").status_code == 401
    assert app_client.get("/api/v1/repositories/acl/nope/manifests/1.0/vulnerabilities").status_code == 404
    assert app_client.get("/api/v1/repositories/acl/app/manifests/2.0/vulnerabilities").status_code == 404
    assert app_client.get("/api/v1/repositories/acl/app/manifests/sha256:zz/vulnerabilities").status_code == 422
    r = app_client.post(f"/api/v1/repositories/acl/app/manifests/{digest}/scan", json={})
    assert r.status_code == 202 and r.json() == {"digest": digest, "status": "queued"}
    assert vulns(app_client, "acl/app", digest)["status"] == "queued"
    assert by_id(vulns(app_client, "acl/app", digest))  # the previous findings stay readable meanwhile
    assert run_scans(services) == 1
    assert vulns(app_client, "acl/app", digest)["status"] == "done"
    r = app_client.put("/api/v1/namespaces/acl/scan-policy", json={"block_severity": "urgent"})
    assert r.status_code == 422
    r = app_client.post("/api/v1/namespaces/acl/allowlist", json={"vulnerability": "not an id!", "reason": "x"})
    assert r.status_code == 422
    status = app_client.get("/api/v1/vulndb").json()
    assert status["present"] is True and status["db_id"] and status["sources"][0]["records"] > 0
    assert json.dumps(status)
    shutil.rmtree(settings.vulndb_path.parent)
    assert app_client.get("/api/v1/vulndb").json()["present"] is False


@pytest.mark.s3
def test_a_scan_streams_its_layers_from_an_s3_bucket(s3_bucket: Any, tmp_path: Path, db_url: str) -> None:
    """On S3 the layers are the bucket's objects (botocore's streaming bodies), not files."""
    from dockyard.app import build_services, create_app
    from tests.conftest import ADMIN, basic, hashed

    server, bucket = s3_bucket
    settings = load_settings(
        data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
        uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False},
        scan={"db_path": str(tmp_path / "vulndb" / "advisories.sqlite")},
        storage={"driver": "s3", "cache_gib": 0, "s3": {"bucket": bucket, "endpoint": server.endpoint,
                                                        "access_key_id": server.access_key,
                                                        "secret_access_key": server.secret_key, "path_style": True}})
    settings.data_dir.mkdir(parents=True)
    services = build_services(settings)
    services.users.create(ADMIN[0], hashed(ADMIN[1]), is_admin=True)
    import_vulndata(settings, "debian-vuln-list-tracker")
    try:
        with TestClient(create_app(settings, services), base_url="http://registry.test", headers=basic(*ADMIN)) as c:
            digest, _, layers = push_layers(c, "s3/app", "1.0", [base_layer()], ["RUN apt-get install openssh-client"])
            assert run_scans(services) == 1
            found = by_id(vulns(c, "s3/app", digest))
            assert found["CVE-2024-6387"]["layer"] == layers[0]
    finally:
        services.db.dispose()


def test_a_robot_reads_reports_within_its_permissions(app_client: TestClient, anon_client: TestClient,
                                                      services: Any, settings: Settings) -> None:
    """CI pipelines run `dockyard scan` with robot accounts: the report calls take them, the rest
    of the management API does not."""
    import_vulndata(settings, "debian-vuln-list-tracker")
    digest, _, _ = push_layers(app_client, "ci/app", "1.0", [base_layer()], ["a"])
    run_scans(services)
    r = app_client.post("/api/v1/namespaces/ci/robots", json={
        "name": "reader", "permissions": [{"repositories": "app", "actions": ["pull"]}]})
    assert r.status_code == 201, r.text
    robot = (r.json()["username"], r.json()["secret"])
    base = f"/api/v1/repositories/ci/app/manifests/{digest}"
    assert anon_client.get(f"{base}/vulnerabilities", auth=robot).status_code == 200
    assert anon_client.get(f"{base}/packages", auth=robot).status_code == 200
    assert anon_client.post(f"{base}/scan", json={}, auth=robot).status_code == 403  # no push
    assert anon_client.get("/api/v1/namespaces/ci/scan-policy", auth=robot).status_code == 401
    assert anon_client.get("/api/v1/repositories/other/app/manifests/1.0/vulnerabilities",
                           auth=robot).status_code == 404
    assert anon_client.get(f"{base}/vulnerabilities", auth=(robot[0], "wrong")).status_code == 401
