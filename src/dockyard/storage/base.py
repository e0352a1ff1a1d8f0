"""The blob storage seam. `FsBlobStore` implements it; an S3 store will too.

All methods are synchronous and may block; the HTTP layer calls them from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobStore(Protocol):
    def stat(self, digest: str) -> int | None:
        """Size in bytes of a stored blob, or None when it is not stored."""

    def local_path(self, digest: str) -> Path | None:
        """A local file holding the blob, for zero-copy serving; None when not stored or not local."""

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading. Raises FileNotFoundError when it is not stored."""

    def sync(self, staged: Path) -> None:
        """Make a fully written staging file durable (fsync), before it is placed."""

    def place(self, staged: Path, digest: str) -> None:
        """Move a synced, verified staging file in as `digest`, atomically and durably.

        Idempotent: when the blob is already stored, the staging file is simply removed. Called
        inside the metadata transaction that records the blob, so garbage collection (which
        deletes inside its own transaction) can never remove bytes a new row points to.
        """

    def purge_staged(self, older_than: float) -> int:
        """Remove manifest staging files left by versions before migration 0005 (which wrote
        manifests as files) last changed before that time; returns the count."""

    def read_bytes(self, digest: str) -> bytes:
        """Read small content whole (manifests pushed before migration 0005). Raises FileNotFoundError."""

    def delete(self, digest: str) -> None:
        """Remove a blob; missing blobs are not an error."""

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored digest with its modification time (for garbage collection)."""
