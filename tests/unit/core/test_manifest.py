"""Manifest parsing, validation and content negotiation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from dockyard.core.errors import ManifestInvalid, Unsupported
from dockyard.core.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    OCI_INDEX,
    OCI_MANIFEST,
    accepts,
    parse_manifest,
)


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


CONFIG = desc("application/vnd.oci.image.config.v1+json", b"{}")
LAYER = desc("application/vnd.oci.image.layer.v1.tar+gzip", b"layer")
CHILD = desc(OCI_MANIFEST, b"child", platform={"architecture": "arm64", "os": "linux"})


def image(**changes: Any) -> dict[str, Any]:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [LAYER]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def index(**changes: Any) -> dict[str, Any]:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [CHILD]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def parse(doc: Any, content_type: str | None = OCI_MANIFEST):  # type: ignore[no-untyped-def]
    return parse_manifest(json.dumps(doc).encode(), content_type)


def test_oci_image_manifest() -> None:
    p = parse(image())
    assert p.media_type == OCI_MANIFEST and not p.is_index
    assert p.config is not None and p.config.digest == CONFIG["digest"]
    assert [d.digest for d in p.blob_references()] == [CONFIG["digest"], LAYER["digest"]]
    assert p.manifests == [] and p.subject is None
    assert p.effective_artifact_type() == CONFIG["mediaType"]


def test_docker_manifest() -> None:
    p = parse(image(mediaType=DOCKER_MANIFEST), DOCKER_MANIFEST)
    assert p.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(("media_type", "content_type"), [(OCI_INDEX, OCI_INDEX), (DOCKER_LIST, DOCKER_LIST)])
def test_indexes(media_type: str, content_type: str) -> None:
    p = parse(index(mediaType=media_type), content_type)
    assert p.is_index and p.media_type == media_type
    assert [m.digest for m in p.manifests] == [CHILD["digest"]]
    assert p.manifests[0].platform == {"architecture": "arm64", "os": "linux"}
    assert p.blob_references() == []
    assert p.effective_artifact_type() is None


def test_media_type_from_content_type_or_shape() -> None:
    assert parse(image(mediaType=None), OCI_MANIFEST).media_type == OCI_MANIFEST
    assert parse(image(mediaType=None), None).media_type == OCI_MANIFEST
    assert parse(index(mediaType=None), "application/json").media_type == OCI_INDEX
    assert parse(index(mediaType=None), OCI_INDEX).media_type == OCI_INDEX


def test_content_type_parameters_and_case() -> None:
    assert parse(image(), "Application/VND.oci.image.manifest.v1+json; charset=utf-8").media_type == OCI_MANIFEST


def test_subject_artifact_type_annotations() -> None:
    subject = desc(OCI_MANIFEST, b"subject")
    p = parse(image(subject=subject, artifactType="application/vnd.example", annotations={"a": "b"}))
    assert p.subject is not None and p.subject.digest == subject["digest"]
    assert p.effective_artifact_type() == "application/vnd.example"
    assert p.annotations == {"a": "b"}


def test_foreign_layers_are_not_blob_references() -> None:
    foreign = desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"f", urls=["https://x.invalid/f"])
    p = parse(image(layers=[LAYER, foreign]))
    assert [d.digest for d in p.blob_references()] == [CONFIG["digest"], LAYER["digest"]]
    assert p.layers[1].urls == ("https://x.invalid/f",)


def test_empty_layers_allowed_for_oci() -> None:
    assert parse(image(layers=[])).layers == []


def test_sha512_descriptors() -> None:
    d = {**LAYER, "digest": "sha512:" + hashlib.sha512(b"layer").hexdigest()}
    assert parse(image(layers=[d])).layers[0].digest.startswith("sha512:")


@pytest.mark.parametrize("content_type", DOCKER_SCHEMA1)
def test_schema1_content_type_is_unsupported(content_type: str) -> None:
    with pytest.raises(Unsupported) as exc:
        parse({"schemaVersion": 1, "fsLayers": []}, content_type)
    assert exc.value.code == "UNSUPPORTED"
    with pytest.raises(Unsupported):  # even when the body is not JSON
        parse_manifest(b"garbage", content_type)


def test_schema1_body_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        parse({"schemaVersion": 1, "name": "x", "fsLayers": []}, "application/json")


INVALID: dict[str, tuple[bytes, str | None]] = {
    "not json": (b"{", OCI_MANIFEST),
    "empty": (b"", OCI_MANIFEST),
    "latin-1": ('{"schemaVersion": 2, "x": "\u00e9"}'.encode("latin-1"), OCI_MANIFEST),
    "utf-16": (json.dumps(image()).encode("utf-16"), OCI_MANIFEST),
    "utf-8 bom": (b"\xef\xbb\xbf" + json.dumps(image()).encode(), OCI_MANIFEST),
    "array": (b"[]", OCI_MANIFEST),
    "deep nesting": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", OCI_MANIFEST),
    "huge integer": (b'{"schemaVersion": ' + b"1" * 5000 + b"}", OCI_MANIFEST),
    "schemaVersion missing": (json.dumps(image(schemaVersion=None)).encode(), OCI_MANIFEST),
    "schemaVersion 3": (json.dumps(image(schemaVersion=3)).encode(), OCI_MANIFEST),
    "schemaVersion true": (json.dumps(image(schemaVersion=True)).encode(), OCI_MANIFEST),
    "schemaVersion string": (json.dumps(image(schemaVersion="2")).encode(), OCI_MANIFEST),
    "mediaType mismatch": (json.dumps(image()).encode(), DOCKER_MANIFEST),
    "mediaType list vs index": (json.dumps(index(mediaType=DOCKER_LIST)).encode(), OCI_INDEX),
    "unknown mediaType": (json.dumps(image(mediaType="application/x")).encode(), None),
    "mediaType number": (json.dumps(image(mediaType=1)).encode(), OCI_MANIFEST),
    "no shape": (json.dumps({"schemaVersion": 2}).encode(), None),
    "image with manifests": (json.dumps(image(manifests=[])).encode(), OCI_MANIFEST),
    "index with config": (json.dumps(index(config=CONFIG)).encode(), OCI_INDEX),
    "index body, image type": (json.dumps(index(mediaType=None)).encode(), OCI_MANIFEST),
    "no config": (json.dumps(image(config=None)).encode(), OCI_MANIFEST),
    "layers missing": (json.dumps(image(layers=None)).encode(), OCI_MANIFEST),
    "docker without layers": (json.dumps(image(mediaType=DOCKER_MANIFEST, layers=[])).encode(), DOCKER_MANIFEST),
    "manifests not a list": (json.dumps(index(manifests="x")).encode(), OCI_INDEX),
    "size negative": (json.dumps(image(layers=[{**LAYER, "size": -1}])).encode(), OCI_MANIFEST),
    "size bool": (json.dumps(image(layers=[{**LAYER, "size": False}])).encode(), OCI_MANIFEST),
    "size float": (json.dumps(image(layers=[{**LAYER, "size": 2.0}])).encode(), OCI_MANIFEST),
    "digest md5": (json.dumps(image(layers=[{**LAYER, "digest": "md5:" + "0" * 32}])).encode(), OCI_MANIFEST),
    "digest number": (json.dumps(image(layers=[{**LAYER, "digest": 5}])).encode(), OCI_MANIFEST),
    "descriptor mediaType empty": (json.dumps(image(layers=[{**LAYER, "mediaType": ""}])).encode(), OCI_MANIFEST),
    "annotations values": (json.dumps(image(layers=[{**LAYER, "annotations": {"a": None}}])).encode(), OCI_MANIFEST),
    "urls not strings": (json.dumps(image(layers=[{**LAYER, "urls": [1]}])).encode(), OCI_MANIFEST),
    "subject not an object": (json.dumps(image(subject="sha256:x")).encode(), OCI_MANIFEST),
    "artifactType number": (json.dumps(image(artifactType=1)).encode(), OCI_MANIFEST),
    "annotations list": (json.dumps(image(annotations=[])).encode(), OCI_MANIFEST),
    # not storable as database text
    "artifactType NUL": (json.dumps(image(artifactType="a\x00b")).encode(), OCI_MANIFEST),
    "artifactType surrogate": (json.dumps(image(artifactType="a\ud800b")).encode(), OCI_MANIFEST),
    "config mediaType NUL": (json.dumps(image(config={**CONFIG, "mediaType": "a\x00"})).encode(), OCI_MANIFEST),
    "layer mediaType surrogate": (json.dumps(image(layers=[{**LAYER, "mediaType": "\udfff"}])).encode(), OCI_MANIFEST),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid(case: str) -> None:
    data, content_type = INVALID[case]
    with pytest.raises(ManifestInvalid) as exc:
        parse_manifest(data, content_type)
    assert exc.value.code == "MANIFEST_INVALID"
    assert len(exc.value.message) < 2000


def test_descriptor_errors_name_the_place() -> None:
    with pytest.raises(ManifestInvalid, match=r"layers\[1\]"):
        parse(image(layers=[LAYER, {**LAYER, "size": "x"}]))
    with pytest.raises(ManifestInvalid, match=r"manifests\[0\]"):
        parse(index(manifests=[{"digest": "sha256:x"}]), OCI_INDEX)


# -- content negotiation ----------------------------------------------------------------------------
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
@pytest.mark.parametrize("accept", [None, "", OCI_INDEX, DOCKER_LIST, "text/plain", "*/*"])
def test_image_manifests_always_served(media_type: str, accept: str | None) -> None:
    assert accepts(accept, media_type)


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_indexes_negotiated(media_type: str) -> None:
    assert accepts(None, media_type)
    assert accepts("", media_type)
    assert accepts(media_type, media_type)
    assert accepts(f"{OCI_MANIFEST}, {media_type}", media_type)
    assert accepts(f"{OCI_MANIFEST},{media_type};q=0.9", media_type)
    assert accepts(media_type.upper(), media_type)
    assert accepts("*/*", media_type)
    assert accepts("application/*", media_type)
    assert accepts("application/json", media_type)  # no manifest type named: not a picky client
    assert not accepts(OCI_MANIFEST, media_type)
    assert not accepts(f"{OCI_MANIFEST}, {DOCKER_MANIFEST}", media_type)


def test_oci_index_not_served_to_a_docker_list_only_client() -> None:
    assert not accepts(f"{DOCKER_MANIFEST}, {DOCKER_LIST}", OCI_INDEX)
    assert not accepts(f"{OCI_MANIFEST}, {OCI_INDEX}", DOCKER_LIST)
