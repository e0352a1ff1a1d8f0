"""Manifest media types, parsing and validation (OCI image manifest and index, Docker schema 2
manifest and manifest list).

`parse_manifest` turns raw bytes plus the request's Content-Type into a `ParsedManifest` that
names every blob and child manifest the manifest references, so the registry can check that
they exist and record the references for garbage collection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.core.digest import Digest
from dockyard.core.errors import ManifestInvalid, Unsupported

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")

IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()


@dataclass(slots=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def blob_references(self) -> list[Descriptor]:
        """Blobs that must exist in the repository: the config and every layer not hosted elsewhere."""
        refs = [self.config] if self.config is not None else []
        refs.extend(layer for layer in self.layers if not layer.urls)
        return refs

    def effective_artifact_type(self) -> str | None:
        """What the referrers API reports: `artifactType`, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None


def _storable(text: str) -> bool:
    """Can the database hold it? JSON may carry a NUL (PostgreSQL text cannot) or a lone
    surrogate (not UTF-8); media types and artifactType are stored as text."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: a descriptor must be a JSON object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type or not _storable(media_type):
        raise ManifestInvalid(f"{where}: mediaType is missing or not a string")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: digest is missing or not a string")
    try:
        Digest.parse(digest)
    except Exception as exc:  # DigestInvalid: report it as a manifest problem, with its reason
        raise ManifestInvalid(f"{where}: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: size must be a non-negative integer")
    annotations = value.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
    ):
        raise ManifestInvalid(f"{where}: annotations must map strings to strings")
    urls = value.get("urls") or ()
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings")
    artifact_type = value.get("artifactType")
    platform = value.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=annotations,
        platform=platform if isinstance(platform, dict) else None,
        urls=tuple(urls),
    )


def _guess_media_type(doc: dict[str, Any]) -> str:
    # OCI manifests may omit mediaType; the shape tells which one it is.
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc or "layers" in doc:
        return OCI_MANIFEST
    raise ManifestInvalid("cannot tell the manifest type: no mediaType, config or manifests")


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest; raise ManifestInvalid (or Unsupported for schema 1) saying what is wrong."""
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type in DOCKER_SCHEMA1:
        raise Unsupported("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    try:
        # Decode as UTF-8 ourselves: json.loads would also take UTF-16/32, which clients cannot read.
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # also too-deep nesting, huge integers
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    version = doc.get("schemaVersion")
    if isinstance(version, bool) or version != 2:  # True == 1 in Python: not schema 1
        if version == 1 and not isinstance(version, bool):
            raise Unsupported("Docker schema 1 manifests are not supported; push schema 2 or OCI")
        raise ManifestInvalid("schemaVersion must be 2")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if declared and content_type and content_type in MANIFEST_TYPES and declared != content_type:
        raise ManifestInvalid(f"Content-Type {content_type} does not match the manifest's mediaType {declared}")
    media_type = declared or (content_type if content_type in MANIFEST_TYPES else None) or _guess_media_type(doc)
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")

    parsed = ParsedManifest(media_type=media_type)
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not _storable(artifact_type)):
        raise ManifestInvalid("artifactType must be a string")
    parsed.artifact_type = artifact_type
    annotations = doc.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    parsed.annotations = annotations
    if doc.get("subject") is not None:
        parsed.subject = _descriptor(doc["subject"], "subject")

    if media_type in IMAGE_TYPES:
        if "manifests" in doc:
            raise ManifestInvalid("an image manifest must not have 'manifests'")
        parsed.config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list")
        if media_type == DOCKER_MANIFEST and not layers:
            raise ManifestInvalid("a Docker schema 2 manifest needs at least one layer")
        parsed.layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
    else:
        if "layers" in doc or "config" in doc:
            raise ManifestInvalid("an index must not have 'config' or 'layers'")
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise ManifestInvalid("manifests must be a list")
        parsed.manifests = [_descriptor(m, f"manifests[{i}]") for i, m in enumerate(manifests)]
    return parsed


_WILDCARDS = ("*/*", "application/*")


def accepts(accept_header: str | None, media_type: str) -> bool:
    """Content negotiation: may a manifest of `media_type` be served to a client sending `Accept`?

    Image manifests are always served (every client understands them, and refusing would break
    plain tools). Indexes and lists are served when the client lists them, sends a wildcard, or
    sends no Accept at all; a client that lists only image manifest types gets MANIFEST_UNKNOWN,
    as distribution does, rather than bytes it cannot parse.
    """
    if media_type in IMAGE_TYPES or not accept_header:
        return True
    offered = {part.split(";")[0].strip().lower() for part in accept_header.split(",")}
    if media_type in offered or any(w in offered for w in _WILDCARDS):
        return True
    return not (offered & set(MANIFEST_TYPES))
