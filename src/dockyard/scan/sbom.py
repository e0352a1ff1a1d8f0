"""SBOMs of a scanned image: CycloneDX 1.6 JSON (with cyclonedx-python-lib) and SPDX 2.3 JSON, and
the OCI artifact manifests that carry them as referrers of the image (`subject`), so that
`oras discover` and the referrers API list them.

Pure functions: bytes in, bytes out. The output is deterministic for a given inventory and
time (serial number and SPDX namespace derive from the image digest), so pushing the SBOM of an
unchanged image again stores nothing new.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import Tool
from cyclonedx.output import OutputFormat, make_outputter
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from dockyard import __version__
from dockyard.core.digest import Digest
from dockyard.scan.model import Inventory, Package
from dockyard.scan.purls import purl_of

CYCLONEDX = "application/vnd.cyclonedx+json"
SPDX = "application/spdx+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GENERATOR = "dev.dockyard.sbom.generator"  # annotation marking the SBOMs Dockyard pushed itself
FILE_NAMES = {CYCLONEDX: "sbom.cdx.json", SPDX: "sbom.spdx.json"}


@dataclass(frozen=True, slots=True)
class Subject:
    repository: str
    digest: str
    media_type: str
    size: int


def _sha256(data: bytes) -> str:
    return str(Digest.of(data))


def _layer_digest(inventory: Inventory, package: Package) -> str | None:
    layers = inventory.layers
    return layers[package.layer].digest if 0 <= package.layer < len(layers) else None


def cyclonedx(subject: Subject, inventory: Inventory, created: datetime) -> bytes:
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{subject.digest}:cyclonedx"))
    bom.metadata.timestamp = created
    bom.metadata.tools.tools.add(Tool(vendor="Dockyard", name="dockyard", version=__version__))
    name, _, digest_hex = subject.digest.partition(":")
    image = Component(name=subject.repository, version=subject.digest, type=ComponentType.CONTAINER, bom_ref="image",
                      purl=PackageURL("oci", None, subject.repository.rsplit("/", 1)[-1], subject.digest,
                                      {"repository_url": subject.repository}))
    if inventory.os is not None:
        image.properties.add(Property(name="dockyard:os", value=f"{inventory.os.id} {inventory.os.version}".strip()))
    bom.metadata.component = image
    components = []
    for i, package in enumerate(inventory.packages):
        component = Component(name=package.name, version=package.version, type=ComponentType.LIBRARY,
                              bom_ref=f"pkg-{i}", purl=PackageURL.from_string(purl_of(package, inventory.os)))
        layer = _layer_digest(inventory, package)
        if layer:
            component.properties.add(Property(name="dockyard:layer", value=layer))
        component.properties.add(Property(name="dockyard:path", value=package.path))
        if package.source_name:
            component.properties.add(Property(name="dockyard:source_package", value=package.source_name))
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(image, components)
    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=None).encode()


def spdx(subject: Subject, inventory: Inventory, created: datetime) -> bytes:
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    packages = [{
        "name": subject.repository, "SPDXID": "SPDXRef-Image", "versionInfo": subject.digest,
        "downloadLocation": "NOASSERTION", "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": subject.digest.split(":")[0].upper(), "checksumValue": subject.digest.split(":")[1]}],
    }]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": "SPDXRef-Image"}]
    for i, package in enumerate(inventory.packages):
        ref = f"SPDXRef-Package-{i}"
        entry = {"name": package.name, "SPDXID": ref, "versionInfo": package.version,
                 "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
                 "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
                 "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                   "referenceLocator": purl_of(package, inventory.os)}]}
        layer = _layer_digest(inventory, package)
        if layer:
            entry["comment"] = f"layer {layer}; {package.path}"
        if package.source_name and package.source_name != package.name:
            entry["sourceInfo"] = f"built from source package {package.source_name} {package.source_version or ''}".strip()
        packages.append(entry)
        relationships.append({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": ref})
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{subject.repository}@{subject.digest}",
        "documentNamespace": f"https://dockyard.dev/spdx/{subject.digest.replace(':', '-')}/{uuid.uuid5(uuid.NAMESPACE_URL, subject.digest)}",
        "creationInfo": {"created": stamp, "creators": [f"Tool: dockyard-{__version__}"]},
        "packages": packages, "relationships": relationships,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Artifact:
    """An SBOM ready to push: its blob, and the manifest (whose digest it is pushed by)."""

    media_type: str
    blob: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return _sha256(self.manifest)


def artifact(subject: Subject, media_type: str, data: bytes, created: datetime) -> Artifact:
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": media_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": _sha256(EMPTY_JSON), "size": len(EMPTY_JSON),
                   "data": base64.b64encode(EMPTY_JSON).decode()},
        "layers": [{"mediaType": media_type, "digest": _sha256(data), "size": len(data),
                    "annotations": {"org.opencontainers.image.title": FILE_NAMES[media_type]}}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        GENERATOR: f"dockyard {__version__}"},
    }
    return Artifact(media_type, data, json.dumps(manifest, separators=(",", ":")).encode())


def sboms(subject: Subject, inventory: Inventory, created: datetime) -> list[Artifact]:
    return [artifact(subject, CYCLONEDX, cyclonedx(subject, inventory, created), created),
            artifact(subject, SPDX, spdx(subject, inventory, created), created)]
