"""Blobs as a repository sees them: existence, reading, deletion and cross-repository mounts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dockyard.core.digest import Digest
from dockyard.core.errors import BlobUnknown
from dockyard.meta.content import ContentStore
from dockyard.storage.base import BlobStore


class BlobService:
    def __init__(self, content: ContentStore, store: BlobStore) -> None:
        self.content = content
        self.store = store

    def stat(self, repository: str, digest: str) -> int:
        """Size of the blob in the repository; raises BlobUnknown (or DigestInvalid)."""
        Digest.parse(digest)
        size = self.content.blob_size_in(repository, digest)
        if size is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", {"digest": digest})
        return size

    def locate(self, repository: str, digest: str) -> tuple[Path, int]:
        """A local file to serve and its size; raises BlobUnknown."""
        size = self.stat(repository, digest)
        path = self.store.local_path(digest)
        if path is None:
            raise BlobUnknown(f"blob {digest} is recorded but its content is missing", {"digest": digest})
        return path, size

    def delete(self, repository: str, digest: str) -> None:
        """Unlink the blob from the repository; garbage collection reclaims the bytes later."""
        Digest.parse(digest)
        if not self.content.unlink_blob(repository, digest):
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", {"digest": digest})

    def mount(self, repository: str, digest: str, source: str | None, may_read: Callable[[str], bool]) -> bool:
        """Link a blob from `source` (or, without it, from any repository the caller may read).

        Returns False when nothing could be mounted; the caller then opens an upload session.
        """
        Digest.parse(digest)
        if source is not None:
            return may_read(source) and self.content.link_blob(repository, digest, source)
        for candidate in self.content.blob_repositories(digest):
            if may_read(candidate):
                return self.content.link_blob(repository, digest, candidate)
        return False
