"""Blobs as a repository sees them: existence, reading, deletion and cross-repository mounts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dockyard.core.digest import Digest
from dockyard.core.errors import BlobUnknown
from dockyard.core.events import SYSTEM, Origin
from dockyard.meta.content import ContentStore
from dockyard.storage.base import BlobReader, BlobStore


class BlobService:
    def __init__(self, content: ContentStore, store: BlobStore, redirect: bool = False) -> None:
        self.content = content
        self.store = store
        self.redirect = redirect

    def stat(self, repository: str, digest: str) -> int:
        """Size of the blob in the repository; raises BlobUnknown (or DigestInvalid)."""
        Digest.parse(digest)
        size = self.content.blob_size_in(repository, digest)
        if size is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", {"digest": digest})
        return size

    async def open_range(self, digest: str, offset: int, length: int) -> BlobReader:
        """Open bytes of a blob the caller may read (checked with `stat`) for sending. Raises
        FileNotFoundError when the content is gone (garbage collection won a race)."""
        if self.store.kind == "fs":  # a local open(2): cheaper than a hop to a worker thread
            return self.store.open_range(digest, offset, length)
        return await asyncio.get_running_loop().run_in_executor(None, self.store.open_range, digest, offset, length)

    def redirect_url(self, digest: str) -> str | None:
        """Where clients may fetch the blob straight from the store (`storage.redirect`), or None."""
        return self.store.redirect_url(digest) if self.redirect else None

    def delete(self, repository: str, digest: str, origin: Origin = SYSTEM) -> None:
        """Unlink the blob from the repository; garbage collection reclaims the bytes later."""
        Digest.parse(digest)
        if not self.content.unlink_blob(repository, digest, origin):
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", {"digest": digest})

    def mount(self, repository: str, digest: str, source: str | None, may_read: Callable[[str], bool],
              origin: Origin = SYSTEM) -> bool:
        """Link a blob from `source` (or, without it, from any repository the caller may read).

        Returns False when nothing could be mounted; the caller then opens an upload session.
        """
        Digest.parse(digest)
        if source is not None:
            return may_read(source) and self.content.link_blob(repository, digest, source, origin)
        for candidate in self.content.blob_repositories(digest):
            if may_read(candidate):
                return self.content.link_blob(repository, digest, candidate, origin)
        return False
