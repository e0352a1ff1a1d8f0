"""Image facts from a manifest and its config: platform, size, layers with their history, labels;
robust to configs of any shape."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from dockyard.core.image import (
    history_of,
    image_facts,
    image_size,
    labels_of,
    layers_with_history,
    parse_config,
    platform_of,
)
from dockyard.core.manifest import OCI_INDEX, OCI_MANIFEST, ParsedManifest, parse_manifest

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


def image(layers: int = 2, config_type: str = OCI_CONFIG, config_size: int = 500) -> ParsedManifest:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {**desc(config_type, b"config"), "size": config_size},
           "layers": [{**desc(LAYER, f"layer {i}".encode()), "size": 1000 * (i + 1)} for i in range(layers)]}
    return parse_manifest(json.dumps(doc).encode(), None)


@pytest.mark.parametrize(("config", "expected"), [
    ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
    ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64/v8"),
    ({"os": "windows", "architecture": "amd64", "variant": ""}, "windows/amd64"),
    ({"os": "linux"}, None),
    ({"architecture": "amd64"}, None),
    ({"os": "unknown", "architecture": "unknown"}, None),  # BuildKit attestation manifests
    ({"os": 1, "architecture": ["amd64"]}, None),
    ({"os": "linux", "architecture": "amd64", "variant": 7}, "linux/amd64"),
    ({"os": "x" * 200, "architecture": "amd64"}, None),  # wider than the column
    ([], None),
    ("linux/amd64", None),
    (None, None),
])
def test_platform_of(config: Any, expected: str | None) -> None:
    assert platform_of(config) == expected


def test_image_size_is_manifest_config_and_layers() -> None:
    parsed = image(layers=3, config_size=500)
    assert image_size(parsed, 700) == 700 + 500 + 1000 + 2000 + 3000
    assert image_size(image(layers=0, config_size=2), 10) == 12


def test_image_facts() -> None:
    parsed = image()
    facts = image_facts(parsed, 100, {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert parsed.config is not None and facts.config_digest == parsed.config.digest
    assert facts.image_size == 100 + 500 + 3000 and facts.platform == "linux/arm/v7"
    # an artifact's config is not an image config: no platform even if it looks like one
    artifact = image(config_type="application/vnd.example.thing+json")
    assert image_facts(artifact, 100, {"os": "linux", "architecture": "amd64"}).platform is None
    assert image_facts(parsed, 100, None).platform is None


def test_history_aligns_to_layers_skipping_empty_layers() -> None:
    config = {"history": [
        {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created": "2024-01-01T00:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": True},
        {"created": "2024-01-02T00:00:00Z", "created_by": "RUN apk add curl", "comment": "buildkit.dockerfile.v0"},
        {"created": "2024-01-02T00:00:01Z", "created_by": "ENV A=b", "empty_layer": True},
    ]}
    layers = layers_with_history(image(layers=2), config)
    assert [(layer.created_by, layer.created) for layer in layers] == [
        ("/bin/sh -c #(nop) ADD file:abc in / ", "2024-01-01T00:00:00Z"),
        ("RUN apk add curl", "2024-01-02T00:00:00Z"),
    ]
    assert [layer.size for layer in layers] == [1000, 2000] and layers[0].media_type == LAYER
    history = history_of(config)
    assert [h.empty_layer for h in history] == [False, True, False, True]
    assert history[2].comment == "buildkit.dockerfile.v0" and history[1].comment is None


def test_history_with_fewer_or_more_entries_than_layers() -> None:
    config = {"history": [{"created_by": "ADD rootfs"}]}
    layers = layers_with_history(image(layers=3), config)
    assert [layer.created_by for layer in layers] == ["ADD rootfs", None, None]
    many = {"history": [{"created_by": f"step {i}"} for i in range(5)]}
    assert [layer.created_by for layer in layers_with_history(image(layers=2), many)] == ["step 0", "step 1"]
    assert [layer.created_by for layer in layers_with_history(image(layers=2), None)] == [None, None]


@pytest.mark.parametrize("config", [
    None, [], "text", 3, {"history": "nope"}, {"history": [1, "x", None, {"created_by": 5, "empty_layer": "yes"}]},
    {"config": "nope"}, {"config": {"Labels": ["a"]}}, {"config": {"Labels": {"a": 1, "b": "ok", "c": None}}},
])
def test_garbage_configs_do_not_crash(config: Any) -> None:
    layers = layers_with_history(image(layers=2), config)
    assert len(layers) == 2
    assert all(layer.created_by is None for layer in layers)
    history_of(config)
    labels = labels_of(config)
    assert labels in ({}, {"b": "ok"})
    platform_of(config)


def test_labels_and_parse_config() -> None:
    doc = {"config": {"Labels": {"org.opencontainers.image.source": "https://example.com/app"}}}
    assert labels_of(doc) == {"org.opencontainers.image.source": "https://example.com/app"}
    assert parse_config(json.dumps(doc).encode()) == doc
    assert parse_config(b"[1, 2]") is None
    assert parse_config(b"\xff\xfe") is None
    assert parse_config(b"{not json") is None
    assert parse_config(b"[" * 100000) is None
    assert parse_config(None) is None


def test_an_index_has_no_image_facts_of_its_own() -> None:
    parsed = parse_manifest(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(), None)
    assert layers_with_history(parsed, {"history": [{"created_by": "x"}]}) == []
    assert image_size(parsed, 123) == 123
