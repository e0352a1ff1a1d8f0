"""A node's local copy of hot blobs from a shared store (`storage.cache_gib`): pulls of a blob this
node served or received before are read from its own disk instead of from the object store.

Blobs are content-addressed and never change, so a copy is never stale: the registry decides
from its metadata whether a repository has a blob before any byte is read, and a copy of a
blob that garbage collection removed (on another node) is only ever space, which eviction
takes back. A copy is made from bytes that pass through the node anyway:

- a blob GET that reads a whole blob from the store writes it to a temporary file as it streams
  past (in the reader's worker thread, `Fill`), renamed under the digest with the last byte;
- a monolithic push writes its bytes to a temporary file too, renamed under the digest when the
  blob is placed (its digest checked). Chunked uploads, whose chunks may reach any node, are not
  copied;
- a client that goes away mid-body, a short read or a write error (a full disk) drops the
  temporary file; requests are never affected by the cache;
- ranges are served from a copy when there is one, but only whole reads fill the cache;
- the size is kept under `max_bytes` by removing the least recently used copies (a hit bumps
  the file's mtime, so recency survives restarts and is shared by the workers of a node); no
  copy is written while the disk has less than `min_free` of its space left.

Copies are not fsynced: a process that dies leaves the page cache, and its complete copies, to
the kernel. Only a machine that goes down (power loss) may leave copies whose bytes did not reach
the disk. Each process therefore keeps a marker with the machine's boot id under `run/`, removed
when it closes; a marker of an earlier boot at start-up means the machine went down while a
process was copying, and the whole cache is dropped.

The directory is the only shared state: several worker processes of one node may use it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.core.digest import Digest
from dockyard.core.errors import DigestInvalid
from dockyard.storage.base import BlobReader, BlobStore, BlobWriter, SessionState, SessionWriter, Staged
from dockyard.storage.fsread import FsReader

log = logging.getLogger(__name__)

TOUCH_AFTER = 60.0  # seconds: a hit bumps the copy's mtime at most this often
STALE_TEMP = 600.0  # seconds untouched before a temporary file is someone's crash, not a fill
EVICT_TO = 0.9  # eviction stops at this fraction of max_bytes
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


class BlobCache:
    def __init__(self, root: Path, max_bytes: int, min_free: float = 0.1) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.run = root / "run"
        self.max_bytes = max_bytes
        self.min_free = min_free
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._filling: set[str] = set()  # digests being copied by this process's GETs
        self._evictor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-cache")
        self._check_boot()
        self._clear_stale_temps()
        self._swept = time.monotonic()
        self.used = sum(size for _, size, _ in self._entries())

    def path(self, digest: str) -> Path:
        d = Digest.parse(digest)  # parsed first: no input names a path outside the cache
        return self.root / d.algorithm / d.encoded[:2] / d.encoded

    # -- life -------------------------------------------------------------------------------------
    def _check_boot(self) -> None:
        """Drop every copy when a process was copying while the machine went down (see above)."""
        current = boot_id()
        crashed = False
        for marker in self.run.iterdir():
            try:
                earlier = marker.read_text().strip() != current
            except OSError:
                continue
            if earlier:  # (a marker of this boot is a live process's, or one killed: its copies are fine)
                crashed = True
                marker.unlink(missing_ok=True)
        if crashed:
            log.warning("blob cache: the machine went down while it was written; dropping %s", self.root)
            for entry in self.root.iterdir():
                if entry.is_dir() and entry not in (self.tmp, self.run):
                    shutil.rmtree(entry, ignore_errors=True)
        self.marker = self.run / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.marker.write_text(current)

    def close(self) -> None:
        """A clean stop: this process's copies are safe in the page cache (see above)."""
        self._evictor.shutdown(wait=True)
        self.marker.unlink(missing_ok=True)

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
    def fill(self, digest: str | None, size: int | None) -> Fill | None:
        """A sink for a blob's bytes as they pass: a whole `size`-byte GET of `digest` (kept
        with its last byte), or a push (`digest` None: kept by `Fill.keep` once placed). None
        when it should not be copied (too large, the disk too full, being copied already)."""
        limit = self.max_bytes // 4
        if size is not None and (size <= 0 or size > limit):
            return None
        now = time.monotonic()
        if now - self._swept > STALE_TEMP:  # temporary files of pushes that never ended
            self._swept = now
            self._background(self._clear_stale_temps)
        if digest is not None:
            with self._lock:
                if digest in self._filling:  # another GET of this process is copying it already
                    return None
                self._filling.add(digest)
        try:
            st = os.statvfs(self.root)
            if (st.f_bavail * st.f_frsize - (size or 0)) < self.min_free * st.f_blocks * st.f_frsize:
                raise OSError("less than the free space the cache leaves")
            temp = self.tmp / uuid.uuid4().hex
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.debug("blob cache: no copy: %s", exc)
            if digest is not None:
                self._done(digest)
            return None
        return Fill(self, temp, fd, digest, size, limit)

    def _done(self, digest: str) -> None:
        with self._lock:
            self._filling.discard(digest)

    def _added(self, size: int) -> None:
        with self._lock:
            self.used += size
            over = self.used > self.max_bytes
        if over:
            self._background(self.evict)

    def _background(self, fn: Any) -> None:
        try:
            self._evictor.submit(fn)
        except RuntimeError:  # closed: the next process's start-up counts and evicts
            pass

    # -- space ------------------------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[Path, int, float]]:
        for algo in self.root.iterdir():
            if algo in (self.tmp, self.run) or not algo.is_dir():
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

    def settle(self) -> None:
        """Wait for a pending eviction (tests)."""
        self._evictor.submit(lambda: None).result()

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


class Fill:
    """The temporary copy of one blob. `write` runs in a reader's or writer's worker thread;
    `abort` may come from the event loop while a write is in flight: the lock keeps the
    descriptor from being closed (and its number reused) under a write."""

    def __init__(self, cache: BlobCache, temp: Path, fd: int, digest: str | None, size: int | None, limit: int) -> None:
        self.cache = cache
        self.temp = temp
        self.fd = fd
        self.digest = digest  # a GET's blob (kept with its last byte); None for a push
        self.size = size
        self.limit = limit
        self.written = 0
        self.state = "open"  # -> "kept" | "dropped"
        self._lock = threading.Lock()

    def write(self, data: Any) -> None:
        with self._lock:
            if self.state != "open":
                return
            try:
                view = memoryview(data)
                if self.written + len(view) > (self.size if self.size is not None else self.limit):
                    raise OSError("more bytes than expected (or than the cache takes)")
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                    self.written += n
            except OSError as exc:  # a full disk: no copy, the request goes on
                log.debug("blob cache: dropping a copy: %s", exc)
                self._drop()
                return
            if self.digest is not None and self.written == self.size:
                self._keep(self.digest)

    def keep(self, digest: str, size: int) -> None:
        """A push: the blob was placed as `digest` with `size` bytes; keep the copy if it is whole."""
        with self._lock:
            if self.state == "open":
                if self.written == size:
                    self._keep(digest)
                else:
                    self._drop()

    def _keep(self, digest: str) -> None:
        try:
            os.close(self.fd)
            self.fd = -1
            final = self.cache.path(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.temp, final)
        except OSError as exc:
            log.warning("blob cache: could not keep a copy of %s: %s", digest, exc)
            self._drop()
            return
        self.state = "kept"
        if self.digest is not None:
            self.cache._done(self.digest)
        self.cache._added(self.written)

    def abort(self) -> None:
        """The bytes stopped before the whole blob was seen (or the push failed): no copy."""
        with self._lock:
            if self.state == "open":
                self._drop()

    def _drop(self) -> None:
        self.state = "dropped"
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        BlobCache._unlink(self.temp)
        if self.digest is not None:
            self.cache._done(self.digest)


class _CopyingWriter:
    """A monolithic push into the store, its bytes copied to the cache as they are written."""

    def __init__(self, inner: BlobWriter, fill: Fill) -> None:
        self.inner = inner
        self.fill = fill

    def write(self, chunks: list[bytes]) -> None:
        self.inner.write(chunks)
        for chunk in chunks:
            self.fill.write(chunk)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()

    def finish(self) -> Staged:
        try:
            return _CopyingStaged(self.inner.finish(), self.fill)
        except BaseException:
            self.fill.abort()
            raise

    def abort(self) -> None:
        self.fill.abort()
        self.inner.abort()


class _CopyingStaged:
    def __init__(self, inner: Staged, fill: Fill) -> None:
        self.inner = inner
        self.fill = fill
        self.size = inner.size

    def digest(self, algorithm: str) -> str:
        return self.inner.digest(algorithm)

    def seal(self) -> None:
        self.inner.seal()

    def place(self, digest: str) -> None:
        self.inner.place(digest)
        self.fill.keep(digest, self.size)  # checked against its digest before it was placed

    def discard(self) -> None:
        self.fill.abort()
        self.inner.discard()


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

    def close(self) -> None:
        self.cache.close()

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

    def open_stream(self, digest: str) -> BinaryIO:
        try:
            return open(self.cache.path(digest), "rb")
        except FileNotFoundError:
            return self.store.open_stream(digest)

    def delete_many(self, digests: Iterable[str]) -> None:
        digests = list(digests)
        self.cache.discard(digests)
        self.store.delete_many(digests)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        return self.store.iter_blobs()

    def check_room(self, length: int) -> None:
        self.store.check_room(length)

    def new_blob(self, algorithm: str, expected: str | None, size_hint: int | None) -> BlobWriter:
        writer = self.store.new_blob(algorithm, expected, size_hint)
        fill = self.cache.fill(None, None if size_hint is None else size_hint)
        return writer if fill is None else _CopyingWriter(writer, fill)

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
