"""A node's local copy of hot blobs from a shared store (`storage.cache`): pulls of a blob this
node served before are read from its own disk instead of from the object store.

Blobs are content-addressed and never change, so a copy is never stale: the registry decides
from its metadata whether a repository has a blob before any byte is read, and a copy of a
blob that garbage collection removed (on another node) is only ever space, which eviction
takes back. Whatever is in the cache is there because it was read whole from the store:

- a miss that reads a whole blob writes the bytes to a temporary file as they stream past (in
  the reader's worker thread, `Fill`); once the last byte is there, the file is made durable
  (fdatasync) and renamed under the digest by the cache's own thread, off the response;
- a client that goes away mid-body, a short read or a write error (a full disk) drops the
  temporary file; the response is never affected by the cache;
- ranges are served from a copy when there is one, but only whole reads fill the cache;
- the size is kept under `max_bytes` by removing the least recently used copies (a hit bumps
  the file's mtime, so recency survives restarts and is shared by the workers of a node); no
  copy is written while the disk has less than `min_free` of its space left.

The directory is the only state: several worker processes of one node may share it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dockyard.core.digest import Digest
from dockyard.core.errors import DigestInvalid
from dockyard.storage.base import BlobReader, BlobStore, BlobWriter, SessionState, SessionWriter, Staged
from dockyard.storage.fsread import FsReader

log = logging.getLogger(__name__)

TOUCH_AFTER = 60.0  # seconds: a hit bumps the copy's mtime at most this often
STALE_TEMP = 600.0  # seconds untouched before a temporary file is someone's crash, not a fill
EVICT_TO = 0.9  # eviction stops at this fraction of max_bytes


class BlobCache:
    def __init__(self, root: Path, max_bytes: int, min_free: float = 0.1) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.max_bytes = max_bytes
        self.min_free = min_free
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-cache")
        self._clear_stale_temps()
        self.used = sum(size for _, size, _ in self._entries())

    def path(self, digest: str) -> Path:
        d = Digest.parse(digest)  # parsed first: no input names a path outside the cache
        return self.root / d.algorithm / d.encoded[:2] / d.encoded

    # -- reading ----------------------------------------------------------------------------------
    def open(self, digest: str, offset: int, length: int) -> FsReader | None:
        """The copy's bytes, or None when there is no (usable) copy."""
        path = self.path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size < offset + length:  # not what was cached: never serve it
                raise OSError(f"cached copy of {digest} has {st.st_size} bytes")
            if time.time() - st.st_mtime > TOUCH_AFTER:
                os.utime(fd)
        except OSError as exc:
            os.close(fd)
            log.warning("dropping a bad cached blob copy: %s", exc)
            self._unlink(path)
            return None
        return FsReader(fd, offset, length)

    # -- filling ----------------------------------------------------------------------------------
    def fill(self, digest: str, size: int) -> Fill | None:
        """A sink for the whole blob as it is read from the store, or None when it should not be
        cached (too large, the disk too full)."""
        if size <= 0 or size > self.max_bytes // 4:
            return None
        try:
            st = os.statvfs(self.root)
            if (st.f_bavail * st.f_frsize - size) < self.min_free * st.f_blocks * st.f_frsize:
                return None
            temp = self.tmp / f"{uuid.uuid4().hex}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("blob cache: cannot start a copy: %s", exc)
            return None
        return Fill(self, digest, size, temp, fd)

    def _sealed(self, fill: Fill) -> None:
        """In the cache's thread: the temporary file is complete; make it durable and visible."""
        try:
            os.fdatasync(fill.fd)
            os.close(fill.fd)
            fill.fd = -1
            final = self.path(fill.digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(fill.temp, final)
        except OSError as exc:
            log.warning("blob cache: could not keep a copy of %s: %s", fill.digest, exc)
            fill.drop()
            return
        with self._lock:
            self.used += fill.size
            over = self.used > self.max_bytes
        if over:
            self.evict()

    # -- space ------------------------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[Path, int, float]]:
        for algo in self.root.iterdir():
            if algo == self.tmp or not algo.is_dir():
                continue
            for fan in algo.iterdir():
                try:
                    with os.scandir(fan) as it:
                        for entry in it:
                            try:
                                st = entry.stat()
                            except FileNotFoundError:
                                continue
                            yield Path(entry.path), st.st_size, st.st_mtime
                except (FileNotFoundError, NotADirectoryError):
                    continue

    def evict(self) -> int:
        """Remove the least recently used copies until the cache is under 90 % of its size (the
        directory is the truth: other workers of the node fill it too). Returns bytes removed."""
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        removed = 0
        for path, size, _ in entries:
            if total - removed <= self.max_bytes * EVICT_TO:
                break
            if self._unlink(path):
                removed += size
        with self._lock:
            self.used = total - removed
        return removed

    def discard(self, digests: Iterable[str]) -> None:
        """Drop the copies of deleted blobs (this node's; other nodes' age out)."""
        for digest in digests:
            try:
                path = self.path(digest)
            except DigestInvalid:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if self._unlink(path):
                with self._lock:
                    self.used -= size

    def _clear_stale_temps(self) -> None:
        cutoff = time.time() - STALE_TEMP
        with os.scandir(self.tmp) as it:
            for entry in it:
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    @staticmethod
    def _unlink(path: Path) -> bool:
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False

    def settle(self) -> None:
        """Wait until the copies whose bytes are all written are in place (tests, shutdown)."""
        self._sealer.submit(lambda: None).result()


class Fill:
    """The temporary copy of one blob being read whole from the store. `write` runs in the
    reader's worker thread, `abort` may come from the event loop while a write is in flight: the
    lock keeps the descriptor from being closed (and its number reused) under a write."""

    def __init__(self, cache: BlobCache, digest: str, size: int, temp: Path, fd: int) -> None:
        self.cache = cache
        self.digest = digest
        self.size = size
        self.temp = temp
        self.fd = fd
        self.written = 0
        self.state = "open"  # -> "sealing" | "dropped"
        self._lock = threading.Lock()

    def write(self, data: Any) -> None:
        with self._lock:
            if self.state != "open":
                return
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                    self.written += n
            except OSError as exc:  # a full disk: no copy, the response goes on
                log.warning("blob cache: dropping the copy of %s: %s", self.digest, exc)
                self._drop()
                return
            if self.written == self.size:
                self.state = "sealing"
                self.cache._sealer.submit(self.cache._sealed, self)
            elif self.written > self.size:
                self._drop()

    def abort(self) -> None:
        """The read ended before the whole blob was seen: no copy."""
        with self._lock:
            if self.state == "open":
                self._drop()

    def drop(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self.state = "dropped"
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        BlobCache._unlink(self.temp)


class CachedStore:
    """A shared store (s3) with this node's `BlobCache` in front of its reads; everything else
    goes straight to the store."""

    def __init__(self, store: BlobStore, cache: BlobCache) -> None:
        self.store = store
        self.cache = cache
        self.kind = store.kind
        self.shared = store.shared

    def __getattr__(self, name: str) -> Any:  # store-specific extras (ensure_bucket, owner…)
        return getattr(self.store, name)

    def stat(self, digest: str) -> int | None:
        return self.store.stat(digest)

    def read_small(self, digest: str, limit: int) -> bytes:
        return self.store.read_small(digest, limit)

    def open_range(self, digest: str, offset: int, length: int) -> BlobReader:
        if length:
            copy = self.cache.open(digest, offset, length)
            if copy is not None:
                return copy
        opener = getattr(self.store, "open_for_cache", None)
        if opener is None or offset != 0 or length == 0:
            return self.store.open_range(digest, offset, length)
        return opener(digest, length, self.cache.fill)  # type: ignore[no-any-return]

    def redirect_url(self, digest: str) -> str | None:
        return self.store.redirect_url(digest)

    def delete_many(self, digests: Iterable[str]) -> None:
        digests = list(digests)
        self.cache.discard(digests)
        self.store.delete_many(digests)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        return self.store.iter_blobs()

    def check_room(self, length: int) -> None:
        self.store.check_room(length)

    def new_blob(self, algorithm: str, expected: str | None, size_hint: int | None) -> BlobWriter:
        return self.store.new_blob(algorithm, expected, size_hint)

    def session_start(self, upload_id: str) -> SessionState:
        return self.store.session_start(upload_id)

    def session_append(self, upload_id: str, state: SessionState, offset: int, hasher: Any | None) -> SessionWriter:
        return self.store.session_append(upload_id, state, offset, hasher)

    def session_stage(self, upload_id: str, state: SessionState, size: int) -> Staged:
        return self.store.session_stage(upload_id, state, size)

    def session_delete(self, upload_id: str, state: SessionState) -> None:
        self.store.session_delete(upload_id, state)

    def session_orphans(self, live: set[str], older_than: float) -> int:
        return self.store.session_orphans(live, older_than)

    def sessions_without_data(self, live: set[str]) -> set[str]:
        return self.store.sessions_without_data(live)
