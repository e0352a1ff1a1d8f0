"""Garbage collection (registry/gc.py): what it removes, what it must never remove, dry runs,
orphan files, stale uploads, and GC running while images are pushed.

Images are pushed through the in-process API (`app_client`); ages are set with SQL UPDATEs on
created_at / linked_at / updated_at so no test waits for a grace period to pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from dockyard.meta.db import utcnow
from dockyard.meta.tables import (
    blobs,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
    tags,
    upload_sessions,
)
from dockyard.registry.gc import GcReport
from dockyard.storage.layout import blob_path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
HOUR = 3600


# -- push helpers (local to this file on purpose) -------------------------------------------------

def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload(client: TestClient, repo: str, data: bytes) -> str:
    digest = sha(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def put_manifest(client: TestClient, repo: str, ref: str, body: bytes, media_type: str) -> Any:
    return client.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type})


@dataclass
class Image:
    repo: str
    digest: str
    body: bytes
    config: str
    layers: list[str]
    tag: str | None = None
    contents: dict[str, bytes] = field(default_factory=dict)

    @property
    def blobs(self) -> set[str]:
        return {self.config, *self.layers}


def image_body(config: bytes, layers: list[bytes], subject: dict[str, Any] | None = None,
               artifact_type: str | None = None, config_type: str = OCI_CONFIG) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(layer), "size": len(layer)} for layer in layers],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    return json.dumps(doc).encode()


def push_image(client: TestClient, repo: str, tag: str | None = None, layers: list[bytes] | None = None,
               config: bytes | None = None, subject: Image | None = None, artifact_type: str | None = None) -> Image:
    """Upload config and layers, then put the manifest by tag (or by digest when tag is None)."""
    if layers is None:
        layers = [f"layer {uuid.uuid4().hex}".encode() * 50]
    if config is None:
        config = json.dumps({"architecture": "amd64", "os": "linux", "id": uuid.uuid4().hex}).encode()
    config_type = OCI_CONFIG
    subject_desc = None
    if subject is not None:
        config, config_type = b"{}", OCI_EMPTY
        subject_desc = {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.body)}
    contents = {sha(config): config, **{sha(layer): layer for layer in layers}}
    for data in contents.values():
        upload(client, repo, data)
    body = image_body(config, layers, subject_desc, artifact_type, config_type)
    digest = sha(body)
    r = put_manifest(client, repo, tag or digest, body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    return Image(repo, digest, body, sha(config), [sha(layer) for layer in layers], tag, contents)


def push_index(client: TestClient, repo: str, children: list[Image], tag: str | None) -> Image:
    body = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": c.digest, "size": len(c.body),
                       "platform": {"architecture": f"arch{i}", "os": "linux"}} for i, c in enumerate(children)],
    }).encode()
    digest = sha(body)
    r = put_manifest(client, repo, tag or digest, body, OCI_INDEX)
    assert r.status_code == 201, r.text
    return Image(repo, digest, body, "", [], tag)


# -- inspection helpers -----------------------------------------------------------------------------

def gc(services: Any, grace: int = 0, untagged: bool = False, dry_run: bool = False) -> GcReport:
    services.gc.settings = services.settings.gc.model_copy(update={"grace_seconds": grace})
    return services.gc.run(dry_run=dry_run, delete_untagged=untagged)  # type: ignore[no-any-return]


def age(services: Any, seconds: int = 2 * HOUR, *, blob_rows: bool = True, links: bool = True,
        manifest_rows: bool = True) -> None:
    """Pretend everything was pushed `seconds` ago."""
    past = utcnow() - timedelta(seconds=seconds)
    with services.db.write() as conn:
        if blob_rows:
            conn.execute(update(blobs).values(created_at=past))
        if links:
            conn.execute(update(repository_blobs).values(linked_at=past))
        if manifest_rows:
            conn.execute(update(manifests).values(created_at=past))


def blob_rows(services: Any) -> set[str]:
    with services.db.read() as conn:
        return set(conn.execute(select(blobs.c.digest)).scalars())


def manifest_digests(services: Any) -> set[str]:
    with services.db.read() as conn:
        return set(conn.execute(select(manifests.c.digest)).scalars())


def stored(services: Any, digest: str) -> bool:
    """A blob's bytes are kept: a file in the blob store, or for a manifest its row in
    manifest_contents (meta/tables.py)."""
    return services.blobs.store.stat(digest) is not None or services.content.manifest_content(digest) is not None


def files(services: Any) -> set[str]:
    return {d for d, _ in services.blobs.store.iter_blobs()}


def snapshot(services: Any) -> dict[str, Any]:
    with services.db.read() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (blobs, repository_blobs, manifests, manifest_blobs, tags, upload_sessions, repositories)}
    staging = sorted(os.listdir(services.settings.upload_root))
    return {"counts": counts, "files": files(services), "staging": staging,
            "blobs": blob_rows(services), "manifests": manifest_digests(services)}


def assert_pullable(client: TestClient, image: Image) -> None:
    ref = image.tag or image.digest
    r = client.get(f"/v2/{image.repo}/manifests/{ref}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    assert r.status_code == 200, r.text
    assert sha(r.content) == image.digest
    for digest in image.blobs:
        r = client.get(f"/v2/{image.repo}/blobs/{digest}")
        assert r.status_code == 200, (digest, r.text)
        assert sha(r.content) == digest


def assert_gone(client: TestClient, services: Any, repo: str, digest: str) -> None:
    assert not stored(services, digest)
    assert digest not in blob_rows(services)
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


# -- unreferenced blobs and the grace period ---------------------------------------------------------

def test_unreferenced_blob_is_kept_within_grace_and_removed_after(app_client: TestClient, services: Any) -> None:
    digest = upload(app_client, "gc/grace", b"nobody references me" * 100)

    report = gc(services, grace=HOUR)
    assert report.blobs == [] and stored(services, digest)

    age(services, 2 * HOUR)
    report = gc(services, grace=HOUR)
    assert report.blobs == [digest]
    assert report.bytes_freed == len(b"nobody references me" * 100)
    assert_gone(app_client, services, "gc/grace", digest)


def test_zero_grace_removes_unreferenced_blob_at_once(app_client: TestClient, services: Any) -> None:
    digest = upload(app_client, "gc/zero", b"short-lived")
    time.sleep(0.01)
    report = gc(services, grace=0)
    assert digest in report.blobs
    assert_gone(app_client, services, "gc/zero", digest)
    assert "removed 0 manifest(s), 1 blob(s)" in report.summary()


def test_grace_seconds_from_settings_is_used(app_client: TestClient, services: Any) -> None:
    digest = upload(app_client, "gc/settings", b"x" * 10)
    assert services.settings.gc.grace_seconds == HOUR  # the default
    assert services.gc.run().blobs == []
    age(services, 2 * HOUR)
    assert services.gc.run().blobs == [digest]


def test_blobs_referenced_by_manifests_are_never_removed(app_client: TestClient, services: Any) -> None:
    tagged = push_image(app_client, "gc/ref", "v1", layers=[b"a" * 300, b"b" * 300])
    untagged = push_image(app_client, "gc/ref", None, layers=[b"c" * 300])
    age(services, 30 * 86400)
    report = gc(services, grace=0, untagged=False)
    assert report.blobs == [] and report.manifests == []
    for image in (tagged, untagged):
        assert_pullable(app_client, image)
        assert stored(services, image.digest)  # the manifest's own bytes are a blob too


def test_blob_uploaded_within_grace_for_a_manifest_not_yet_pushed(app_client: TestClient, services: Any) -> None:
    old = push_image(app_client, "gc/pending", "old")
    age(services, 2 * HOUR)
    layer, config = b"fresh layer" * 100, b'{"fresh": true}'
    upload(app_client, "gc/pending", layer)
    upload(app_client, "gc/pending", config)
    report = gc(services, grace=HOUR, untagged=True)
    assert report.blobs == []
    # the manifest arrives after GC ran: its blobs are still there
    body = image_body(config, [layer])
    assert put_manifest(app_client, "gc/pending", "new", body, OCI_MANIFEST).status_code == 201
    assert_pullable(app_client, Image("gc/pending", sha(body), body, sha(config), [sha(layer)], "new"))
    assert_pullable(app_client, old)


def test_recent_link_of_an_old_blob_protects_it(app_client: TestClient, services: Any) -> None:
    """A blob stored long ago but uploaded (or mounted) again just now is about to be referenced."""
    digest = upload(app_client, "gc/relink-a", b"old bytes" * 50)
    age(services, 2 * HOUR)
    r = app_client.post(f"/v2/gc/relink-b/blobs/uploads/?mount={digest}&from=gc/relink-a")
    assert r.status_code == 201, r.text
    report = gc(services, grace=HOUR)
    assert report.blobs == []
    assert app_client.head(f"/v2/gc/relink-b/blobs/{digest}").status_code == 200
    age(services, 2 * HOUR)
    assert gc(services, grace=HOUR).blobs == [digest]


def test_manifest_pushed_between_scan_and_delete_keeps_its_blob(app_client: TestClient, services: Any) -> None:
    """The candidate list is re-checked inside each delete transaction."""
    layer, config = b"raced layer" * 64, b'{"raced": 1}'
    upload(app_client, "gc/race", layer)
    upload(app_client, "gc/race", config)
    age(services, 2 * HOUR)
    body = image_body(config, [layer])
    scan = services.gc._unreferenced

    def scan_then_push(cutoff: object, ignore: Any = None) -> Any:
        found = list(scan(cutoff, ignore))
        assert {sha(layer), sha(config)} <= {d for d, _ in found}
        assert put_manifest(app_client, "gc/race", "v1", body, OCI_MANIFEST).status_code == 201
        return iter(found)

    services.gc._unreferenced = scan_then_push
    report = gc(services, grace=HOUR)
    assert report.blobs == []
    assert_pullable(app_client, Image("gc/race", sha(body), body, sha(config), [sha(layer)], "v1"))


def test_push_refused_after_gc_leaves_new_repository_usable(app_client: TestClient, services: Any) -> None:
    """A first push to a new repository refused with MANIFEST_BLOB_UNKNOWN (its blob was collected)
    rolls back; the client then uploads the blob again and pushes again, which must work."""
    layer, config = b"collected before the manifest came" * 20, b'{"late": true}'
    upload(app_client, "gc/src", layer)
    upload(app_client, "gc/src", config)
    age(services, 2 * HOUR)
    assert set(gc(services, grace=HOUR).blobs) == {sha(layer), sha(config)}
    body = image_body(config, [layer])
    r = put_manifest(app_client, "gc/brand-new", "v1", body, OCI_MANIFEST)
    assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text
    upload(app_client, "gc/brand-new", layer)
    upload(app_client, "gc/brand-new", config)
    r = put_manifest(app_client, "gc/brand-new", "v1", body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert_pullable(app_client, Image("gc/brand-new", sha(body), body, sha(config), [sha(layer)], "v1"))


# -- untagged manifests ----------------------------------------------------------------------------

def test_delete_untagged_keeps_tagged_index_children_and_referrers(app_client: TestClient, services: Any) -> None:
    repo = "gc/untagged"
    tagged = push_image(app_client, repo, "latest")
    child_a = push_image(app_client, repo, None)
    child_b = push_image(app_client, repo, None)
    index = push_index(app_client, repo, [child_a, child_b], "multi")
    signature = push_image(app_client, repo, None, layers=[b"sig" * 10], subject=tagged,
                           artifact_type="application/vnd.dev.cosign.simplesigning.v1+json")
    sig_of_sig = push_image(app_client, repo, None, layers=[b"sig2" * 10], subject=signature,
                            artifact_type="application/example.attestation")
    child_sbom = push_image(app_client, repo, None, layers=[b"sbom" * 10], subject=child_a,
                            artifact_type="application/spdx+json")
    orphan = push_image(app_client, repo, None, layers=[b"orphan layer" * 20])
    orphan_sig = push_image(app_client, repo, None, layers=[b"orphan sig" * 10], subject=orphan,
                            artifact_type="application/example.sig")
    shared_layer = b"shared with a kept image" * 10
    shared = push_image(app_client, repo, "shared", layers=[shared_layer])
    orphan_sharing = push_image(app_client, repo, None, layers=[shared_layer, b"own layer" * 10])
    age(services, 2 * HOUR)
    young = push_image(app_client, repo, None)  # untagged but within the grace period

    report = gc(services, grace=HOUR, untagged=True)

    assert set(report.manifests) == {orphan.digest, orphan_sig.digest, orphan_sharing.digest}
    left = manifest_digests(services)
    kept = [tagged, child_a, child_b, index, signature, sig_of_sig, child_sbom, shared, young]
    assert left == {i.digest for i in kept}
    for image in kept:
        if image is not index:
            assert_pullable(app_client, image)
    # a removed manifest's blobs go in the same run (they are older than grace) ...
    removed_blobs = {orphan.digest, orphan_sig.digest, orphan_sharing.digest, *orphan.blobs,
                     sha(b"orphan sig" * 10), sha(b"own layer" * 10), orphan_sharing.config}
    assert set(report.blobs) == removed_blobs
    for digest in removed_blobs:
        assert not stored(services, digest)
    # ... except what a kept manifest still uses
    assert stored(services, sha(shared_layer))
    assert stored(services, sha(b"{}"))  # the empty config of the kept signatures


def test_without_delete_untagged_untagged_manifests_stay(app_client: TestClient, services: Any) -> None:
    image = push_image(app_client, "gc/keepuntagged", None)
    age(services, 2 * HOUR)
    assert services.settings.gc.delete_untagged is False
    report = gc(services, grace=0)  # delete_untagged from settings
    assert report.manifests == [] and report.blobs == []
    assert_pullable(app_client, image)


def test_delete_untagged_from_settings(app_client: TestClient, services: Any) -> None:
    image = push_image(app_client, "gc/untagged-settings", None)
    age(services, 2 * HOUR)
    services.gc.settings = services.settings.gc.model_copy(update={"delete_untagged": True, "grace_seconds": HOUR})
    report = services.gc.run()
    assert report.manifests == [image.digest]
    assert image.digest not in manifest_digests(services)


def test_untagging_makes_manifest_and_then_blobs_collectable(app_client: TestClient, services: Any) -> None:
    repo = "gc/untag"
    image = push_image(app_client, repo, "v1", layers=[b"L1" * 100, b"L2" * 100])
    age(services, 2 * HOUR)
    assert gc(services, grace=HOUR, untagged=True).manifests == []
    assert app_client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    report = gc(services, grace=HOUR, untagged=True)
    assert report.manifests == [image.digest]
    assert set(report.blobs) == image.blobs | {image.digest}
    for digest in image.blobs:
        assert_gone(app_client, services, repo, digest)
    assert app_client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 404


def test_deleted_manifest_blobs_are_collectable(app_client: TestClient, services: Any) -> None:
    """DELETE by digest, then a plain GC (no delete_untagged) reclaims the blobs."""
    repo = "gc/deleted"
    image = push_image(app_client, repo, "v1")
    assert app_client.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    age(services, 2 * HOUR)
    report = gc(services, grace=HOUR)
    assert report.manifests == []
    assert set(report.blobs) == image.blobs | {image.digest}
    for digest in image.blobs:
        assert not stored(services, digest)


def test_removed_index_releases_its_children(app_client: TestClient, services: Any) -> None:
    repo = "gc/index"
    child = push_image(app_client, repo, None)
    index = push_index(app_client, repo, [child], "multi")
    age(services, 2 * HOUR)
    assert gc(services, grace=HOUR, untagged=True).manifests == []
    assert app_client.delete(f"/v2/{repo}/manifests/multi").status_code == 202
    report = gc(services, grace=HOUR, untagged=True)
    assert set(report.manifests) == {index.digest, child.digest}
    assert set(report.blobs) == child.blobs | {child.digest, index.digest}
    assert manifest_digests(services) == set()


def test_tag_pushed_between_scan_and_delete_keeps_manifest(app_client: TestClient, services: Any) -> None:
    repo = "gc/tagrace"
    image = push_image(app_client, repo, None)
    age(services, 2 * HOUR)
    scan = services.gc._unkept_manifests

    def scan_then_tag(cutoff: object) -> Any:
        found = scan(cutoff)
        assert image.digest in {d for _, d in found}
        assert put_manifest(app_client, repo, "late", image.body, OCI_MANIFEST).status_code == 201
        return found

    services.gc._unkept_manifests = scan_then_tag
    gc(services, grace=HOUR, untagged=True)
    assert image.digest in manifest_digests(services)
    assert_pullable(app_client, Image(repo, image.digest, image.body, image.config, image.layers, "late"))


def test_index_pushed_between_scan_and_delete_keeps_child(app_client: TestClient, services: Any) -> None:
    repo = "gc/indexrace"
    child = push_image(app_client, repo, None)
    age(services, 2 * HOUR)
    scan = services.gc._unkept_manifests
    holder: list[Image] = []

    def scan_then_index(cutoff: object) -> Any:
        found = scan(cutoff)
        assert child.digest in {d for _, d in found}
        holder.append(push_index(app_client, repo, [child], "multi"))
        return found

    services.gc._unkept_manifests = scan_then_index
    gc(services, grace=HOUR, untagged=True)
    assert child.digest in manifest_digests(services), "GC removed the child of an index tagged meanwhile"
    assert_pullable(app_client, child)


# -- shared blobs ----------------------------------------------------------------------------------

def test_blob_shared_with_another_repository_is_kept(app_client: TestClient, services: Any) -> None:
    base = b"shared base layer" * 200
    a = push_image(app_client, "gc/shared-a", "v1", layers=[base, b"a only" * 10])
    b = push_image(app_client, "gc/shared-b", "v1", layers=[base, b"b only" * 10])
    assert app_client.delete(f"/v2/gc/shared-a/manifests/{a.digest}").status_code == 202
    age(services, 2 * HOUR)
    report = gc(services, grace=HOUR, untagged=True)
    assert sha(base) not in report.blobs
    assert sha(b"a only" * 10) in report.blobs
    assert stored(services, sha(base))
    assert_pullable(app_client, b)


def test_same_manifest_in_two_repositories(app_client: TestClient, services: Any) -> None:
    layers, config = [b"same" * 100], b'{"same": true}'
    a = push_image(app_client, "gc/twin-a", "v1", layers=layers, config=config)
    b = push_image(app_client, "gc/twin-b", None, layers=layers, config=config)
    assert a.digest == b.digest
    age(services, 2 * HOUR)
    report = gc(services, grace=HOUR, untagged=True)
    assert report.manifests == [b.digest]  # the untagged copy in twin-b only
    assert report.blobs == []
    assert_pullable(app_client, a)


# -- dry run ---------------------------------------------------------------------------------------

def _messy_registry(client: TestClient, services: Any) -> None:
    push_image(client, "gc/dry", "kept")
    push_image(client, "gc/dry", None)
    gone = push_image(client, "gc/dry", "gone")
    client.delete("/v2/gc/dry/manifests/gone")
    upload(client, "gc/dry", b"loose blob" * 10)
    age(services, 2 * HOUR)
    assert stored(services, gone.digest)
    orphan = b"orphan file"
    path = blob_path(services.settings.blob_root, sha(orphan))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orphan)
    old = time.time() - 2 * HOUR
    os.utime(path, (old, old))


@pytest.mark.parametrize("untagged", [False, True])
def test_dry_run_reports_the_same_set_and_changes_nothing(app_client: TestClient, services: Any, untagged: bool) -> None:
    _messy_registry(app_client, services)
    before = snapshot(services)
    dry = gc(services, grace=HOUR, untagged=untagged, dry_run=True)
    assert snapshot(services) == before
    assert dry.blobs and dry.orphan_files == 1
    assert bool(dry.manifests) == untagged
    assert dry.summary().startswith("would remove ")
    # twice: still the same
    assert gc(services, grace=HOUR, untagged=untagged, dry_run=True).blobs == dry.blobs

    real = gc(services, grace=HOUR, untagged=untagged)
    assert real.summary().startswith("removed ")
    assert sorted(real.manifests) == sorted(dry.manifests)
    assert sorted(real.blobs) == sorted(dry.blobs)
    assert real.bytes_freed == dry.bytes_freed
    assert real.orphan_files == dry.orphan_files
    after = snapshot(services)
    assert after["blobs"] == before["blobs"] - set(dry.blobs)
    assert after["manifests"] == before["manifests"] - set(dry.manifests)
    assert gc(services, grace=HOUR, untagged=untagged, dry_run=True).blobs == []


# -- orphan files and stale uploads ----------------------------------------------------------------

def test_orphan_files_older_than_grace_are_removed(app_client: TestClient, services: Any) -> None:
    image = push_image(app_client, "gc/orphans", "v1")
    root = services.settings.blob_root
    old, young = b"orphan from a crash", b"being placed right now"
    for data in (old, young):
        path = blob_path(root, sha(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    past = time.time() - 2 * HOUR
    os.utime(blob_path(root, sha(old)), (past, past))
    # known blobs are never orphans, however old their files are
    os.utime(blob_path(root, image.layers[0]), (past, past))

    dry = gc(services, grace=HOUR, dry_run=True)
    assert dry.orphan_files == 1 and blob_path(root, sha(old)).exists()
    report = gc(services, grace=HOUR)
    assert report.orphan_files == 1
    assert not blob_path(root, sha(old)).exists()
    assert blob_path(root, sha(young)).exists()
    assert_pullable(app_client, image)


def test_orphan_sweep_spares_a_file_whose_upload_is_committing(services: Any) -> None:
    """An upload places its file inside its transaction, before the row is committed. The file
    keeps the staging file's mtime, which is old when the client sent its last chunk long ago:
    GC must not take it for an orphan while that transaction is in flight."""
    data = b"slow chunked upload, finished at last" * 10
    digest = sha(data)
    staged = services.settings.upload_root / "inflight"
    staged.write_bytes(data)
    past = time.time() - 2 * HOUR
    os.utime(staged, (past, past))
    placed, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def place() -> None:
        services.blobs.store.session_stage("inflight", None, len(data)).place(digest)
        placed.set()
        release.wait(10)

    def commit() -> None:
        try:
            services.content.add_blob("gc/inflight", digest, len(data), place)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def collect() -> None:
        try:
            gc(services, grace=HOUR)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    uploader = threading.Thread(target=commit)
    uploader.start()
    assert placed.wait(10)
    collector = threading.Thread(target=collect)
    collector.start()
    collector.join(1.0)  # GC finishes (PostgreSQL) or waits for the write lock (SQLite)
    release.set()
    uploader.join(10)
    collector.join(10)
    assert not errors, errors
    assert digest in blob_rows(services)
    assert stored(services, digest), "GC removed the file of a blob being committed"


def test_stale_upload_sessions_are_purged(app_client: TestClient, services: Any) -> None:
    repo = "gc/uploads"
    stale = app_client.post(f"/v2/{repo}/blobs/uploads/")
    fresh = app_client.post(f"/v2/{repo}/blobs/uploads/")
    assert stale.status_code == fresh.status_code == 202
    r = app_client.patch(stale.headers["Location"], content=b"partial", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202
    stale_id, fresh_id = stale.headers["Docker-Upload-UUID"], fresh.headers["Docker-Upload-UUID"]
    staging = services.settings.upload_root
    assert (staging / stale_id).exists()
    limit = services.settings.uploads.purge_after_seconds
    with services.db.write() as conn:
        conn.execute(update(upload_sessions).where(upload_sessions.c.id == stale_id)
                     .values(updated_at=utcnow() - timedelta(seconds=limit + 60)))

    assert gc(services, grace=HOUR, dry_run=True).uploads_purged == 0
    assert (staging / stale_id).exists()
    report = gc(services, grace=HOUR)
    assert report.uploads_purged == 1
    assert "1 stale upload(s)" in report.summary()
    assert not (staging / stale_id).exists()
    assert app_client.get(stale.headers["Location"]).status_code == 404
    assert app_client.get(fresh.headers["Location"]).status_code == 204
    assert (staging / fresh_id).exists()
    # the fresh session still completes
    r = app_client.put(fresh.headers["Location"] + f"?digest={sha(b'done')}", content=b"done",
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text


# -- GC while pushing ------------------------------------------------------------------------------

def test_gc_concurrent_with_pushes_never_leaves_missing_blobs(app_client: TestClient, services: Any) -> None:
    """Pushers (shared base layers, images deleted as they go, blobs skipped when HEAD finds them,
    as real clients do) against a GC loop with a one-second grace period and now and then none: a
    push may be refused with MANIFEST_BLOB_UNKNOWN and retried, but no manifest may ever be left
    pointing at a blob that is gone."""
    bases = [f"base layer {i} {uuid.uuid4().hex}".encode() * 300 for i in range(3)]
    n_threads, n_images = 4, 16
    deadline = time.monotonic() + 120
    errors: list[BaseException] = []
    kept: list[Image] = []
    lock = threading.Lock()
    stop = threading.Event()
    gc_runs = [0]
    retries = [0]
    removed: dict[str, set[str]] = {"blobs": set(), "manifests": set()}

    def push_with_retry(repo: str, tag: str, layers: list[bytes], config: bytes) -> Image:
        body = image_body(config, layers)
        for _ in range(200):
            for data in [config, *layers]:
                # only a 404 means "not there, upload it": any other answer is a failure of its own
                status = app_client.head(f"/v2/{repo}/blobs/{sha(data)}").status_code
                assert status in (200, 404), f"HEAD {repo} blob -> {status}"
                if status == 404:
                    upload(app_client, repo, data)
            r = put_manifest(app_client, repo, tag, body, OCI_MANIFEST)
            if r.status_code == 201:
                return Image(repo, sha(body), body, sha(config), [sha(x) for x in layers], tag)
            assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text, r.text
            with lock:
                retries[0] += 1
            assert time.monotonic() < deadline, "pushes starved by GC"
        raise AssertionError("push never succeeded")

    def pusher(i: int) -> None:
        try:
            repo = f"gc/conc{i % 2}"
            previous: Image | None = None
            for n in range(n_images):
                layers = [bases[(i + n) % 3], f"own {i} {n} {uuid.uuid4().hex}".encode() * 20]
                config = json.dumps({"thread": i, "n": n}).encode()
                image = push_with_retry(repo, f"t{i}-{n}", layers, config)
                if previous is not None and n % 2:
                    # drop the previous image: by tag (then GC drops the manifest) or by digest
                    ref = previous.tag if n % 4 == 1 else previous.digest
                    assert app_client.delete(f"/v2/{repo}/manifests/{ref}").status_code == 202
                    previous = None
                elif previous is not None:
                    with lock:
                        kept.append(previous)
                previous = image
                time.sleep(0.1)
            assert previous is not None
            with lock:
                kept.append(previous)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def collector() -> None:
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                eager = gc_runs[0] % 5 == 4
                report = gc(services, grace=0 if eager else 1, untagged=True)
                removed["blobs"].update(report.blobs)
                removed["manifests"].update(report.manifests)
                gc_runs[0] += 1
                # A run with no grace deletes every blob not yet referenced: back to back, they
                # would starve a push whose upload-to-manifest window is longer than the gap
                # between them (a push on PostgreSQL takes tens of milliseconds).
                time.sleep(0.15 if eager else 0.005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(n_threads)]
    collector_thread = threading.Thread(target=collector)
    collector_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    stop.set()
    collector_thread.join(timeout=60)
    assert not any(t.is_alive() for t in [*threads, collector_thread]), "threads did not finish"
    assert not errors, "".join(traceback.format_exception(errors[0])) if errors else ""
    assert gc_runs[0] >= 3, gc_runs
    assert removed["manifests"] and removed["blobs"], "GC had nothing to do: the test shows nothing"

    def check_invariant() -> None:
        with services.db.read() as conn:
            referenced = conn.execute(select(manifests.c.digest, manifest_blobs.c.digest)
                                      .join(manifest_blobs, manifest_blobs.c.manifest_id == manifests.c.id)).all()
        missing = [(m, b) for m, b in referenced if not stored(services, b)]
        assert not missing, f"manifests whose blobs are gone: {missing[:5]}"
        rows = blob_rows(services)
        assert all(b in rows for _, b in referenced)

    check_invariant()
    gc(services, grace=0, untagged=True)
    check_invariant()
    with services.db.read() as conn:
        tagged = set(conn.execute(select(tags.c.manifest_digest)).scalars())
    assert {i.digest for i in kept} <= tagged
    for image in kept:
        assert_pullable(app_client, image)
    # every manifest left is reachable and complete
    with services.db.read() as conn:
        rows = conn.execute(select(repositories.c.name, manifests.c.digest)
                            .join(manifests, manifests.c.repository_id == repositories.c.id)).all()
    for repo, digest in rows:
        r = app_client.get(f"/v2/{repo}/manifests/{digest}")
        assert r.status_code == 200
        doc = r.json()
        for desc in [doc["config"], *doc["layers"]]:
            assert app_client.get(f"/v2/{repo}/blobs/{desc['digest']}").status_code == 200
