"""What the /v2 handlers need, built once by app.py."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.api.distribution.access import Gate
from dockyard.config import Settings
from dockyard.registry.activity import Activity
from dockyard.registry.blobs import BlobService
from dockyard.registry.manifests import ManifestService
from dockyard.registry.scans import PullGuard
from dockyard.registry.uploads import UploadService


@dataclass(frozen=True, slots=True)
class RegistryContext:
    settings: Settings
    gate: Gate
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    activity: Activity
    pull_guard: PullGuard | None = None
