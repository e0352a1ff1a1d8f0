"""Local-disk blob store (the default): content-addressed files, staged uploads beside them.

A blob file is complete and verified by construction: its bytes are written to a staging file,
hashed while they arrive, fsynced, and renamed into place inside the transaction that records
the blob. Sessions keep no state but their staging file (`SessionState` is None).
"""

from __future__ import annotations

import ctypes
import errno
import ctypes.util
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.core.errors import BlobTooLarge
from dockyard.storage.base import SessionState
from dockyard.storage.fsread import FsReader
from dockyard.storage.layout import blob_path, staging_path

# Start writeback every so often so the fsync at commit has little left to do.
SYNC_EVERY = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> "ctypes._CFuncPtr | None":
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return fn  # type: ignore[no-any-return]


# Linux's sync_file_range(SYNC_FILE_RANGE_WRITE) starts writeback without waiting for it and
# without dropping the pages from the cache (a pull right after a push still reads from memory).
_sync_file_range = _load_sync_file_range()


def hash_file(path: Path | str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSink:
    """Appends to an open file descriptor and feeds a hasher. Runs in a worker thread."""

    def __init__(self, fd: int, hasher: Any | None, sync: bool, offset: int = 0) -> None:
        self.fd = fd
        self.hasher = hasher
        self.sync = sync
        self.written = 0
        self.offset = offset  # file position: writeback is started at fixed positions, so
        # a chunked upload (many sinks, one per PATCH) gets it as often as a monolithic one

    def write(self, chunks: list[bytes]) -> None:
        """Hash and append the chunks (one writev; the chunks are never joined in memory)."""
        if self.hasher is not None:
            for chunk in chunks:
                self.hasher.update(chunk)
        size = sum(len(c) for c in chunks)
        done = os.writev(self.fd, chunks)
        if done < size:  # a short write: finish chunk by chunk
            view = memoryview(b"".join(chunks))[done:]
            while view:
                view = view[os.write(self.fd, view):]
        self.written += size
        before, self.offset = self.offset, self.offset + size
        if self.sync and _sync_file_range is not None and before // SYNC_EVERY != self.offset // SYNC_EVERY:
            _sync_file_range(self.fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # 0, 0: the whole file


class FsStaged:
    """A complete staging file."""

    def __init__(self, store: "FsBlobStore", path: Path, size: int) -> None:
        self.store = store
        self.path = path
        self.size = size

    def digest(self, algorithm: str) -> str:
        return hash_file(self.path, algorithm)

    def seal(self) -> None:
        if self.store.fsync:
            _fsync(self.path)

    def place(self, digest: str) -> None:
        self.store._place(self.path, digest)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class FsBlobWriter(FileSink):
    """A monolithic upload into its own staging file."""

    def __init__(self, store: "FsBlobStore", algorithm: str) -> None:
        self.store = store
        self.path = store.staging / f"m{uuid.uuid4().hex}"
        super().__init__(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644),
                         hashlib.new(algorithm), store.fsync)

    def hexdigest(self) -> str:
        return str(self.hasher.hexdigest())

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self) -> FsStaged:
        self._close()
        return FsStaged(self.store, self.path, self.written)

    def abort(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)


class FsSessionWriter(FileSink):
    """One chunk appended to a session's staging file at the session's recorded length."""

    def __init__(self, path: Path, offset: int, hasher: Any | None, sync: bool) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # FileNotFoundError: the session lost its file
        os.lseek(fd, offset, os.SEEK_SET)
        super().__init__(fd, hasher, sync, offset)
        self.path = path
        self.start = offset

    def commit(self) -> SessionState:
        try:
            if os.fstat(self.fd).st_size != self.offset:
                os.ftruncate(self.fd, self.offset)  # drop bytes a crashed earlier chunk left behind
        finally:
            self._close()
        return None

    def rollback(self) -> None:
        try:
            if self.fd >= 0:
                os.ftruncate(self.fd, self.start)  # all or nothing
            else:  # committed, but the database refused the new offset
                os.truncate(self.path, self.start)
        except FileNotFoundError:
            pass  # cancelled meanwhile
        finally:
            self._close()

    def superseded(self) -> None:
        pass

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class FsBlobStore:
    """Content-addressed files under `root` (see storage.layout for the tree); uploads are staged
    under `staging` (on the same filesystem, so placing a blob is a rename)."""

    kind = "fs"
    shared = False

    def __init__(self, root: Path, staging: Path, fsync: bool = True, fsync_dirs: bool = False) -> None:
        self.root = root
        self.staging = staging
        self.fsync = fsync
        self.fsync_dirs = fsync and fsync_dirs
        root.mkdir(parents=True, exist_ok=True)
        staging.mkdir(parents=True, exist_ok=True)

    # -- reading ----------------------------------------------------------------------------------
    def stat(self, digest: str) -> int | None:
        try:
            return blob_path(self.root, digest).stat().st_size
        except FileNotFoundError:
            return None

    def read_small(self, digest: str, limit: int) -> bytes:
        with open(blob_path(self.root, digest), "rb") as f:
            return f.read(limit)

    def open_range(self, digest: str, offset: int, length: int) -> FsReader:
        return FsReader(os.open(blob_path(self.root, digest), os.O_RDONLY | os.O_CLOEXEC), offset, length)

    def redirect_url(self, digest: str) -> str | None:
        return None

    def open_stream(self, digest: str) -> BinaryIO:
        return open(blob_path(self.root, digest), "rb")

    # -- deleting and listing ---------------------------------------------------------------------
    def delete_many(self, digests: Iterable[str]) -> None:
        for digest in digests:
            blob_path(self.root, digest).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        for algo_dir in self.root.iterdir():
            if not algo_dir.is_dir() or algo_dir.name.startswith("."):
                continue
            for prefix in algo_dir.iterdir():
                if not prefix.is_dir():
                    continue
                for entry in os.scandir(prefix):
                    if entry.is_file() and not entry.name.startswith("."):
                        try:
                            mtime = entry.stat().st_mtime
                        except FileNotFoundError:
                            continue  # deleted meanwhile (another GC)
                        yield f"{algo_dir.name}:{entry.name}", mtime

    # -- writing ----------------------------------------------------------------------------------
    def check_room(self, length: int) -> None:
        """Against the staging file system: `Content-Length: 100000000000000000` never fits (413),
        a blob larger than the room left now gets the 507 of a full disk."""
        stat = os.statvfs(self.staging)
        if length > stat.f_blocks * stat.f_frsize:
            raise BlobTooLarge(f"Content-Length {length} is more than the registry's storage can ever hold", {"length": length})
        if length > stat.f_bavail * stat.f_frsize:
            raise OSError(errno.ENOSPC, f"Content-Length {length} is more than the room left on the registry's storage")

    def new_blob(self, algorithm: str, expected: str | None, size_hint: int | None) -> FsBlobWriter:
        return FsBlobWriter(self, algorithm)

    def session_start(self, upload_id: str) -> SessionState:
        staging_path(self.staging, upload_id).touch(exist_ok=False)
        return None

    def session_append(self, upload_id: str, state: SessionState, offset: int, hasher: Any | None) -> FsSessionWriter:
        return FsSessionWriter(staging_path(self.staging, upload_id), offset, hasher, self.fsync)

    def session_stage(self, upload_id: str, state: SessionState, size: int) -> FsStaged:
        path = staging_path(self.staging, upload_id)
        if not path.exists():
            raise FileNotFoundError(path)
        return FsStaged(self, path, size)

    def session_delete(self, upload_id: str, state: SessionState) -> None:
        staging_path(self.staging, upload_id).unlink(missing_ok=True)

    def session_orphans(self, live: set[str], older_than: float) -> int:
        """Staging files no session owns (monolithic uploads cut short by a crash, sessions whose
        row is gone), and manifest staging files of versions before migration 0005."""
        removed = 0
        for folder, keep in ((self.staging, live), (self.root / ".staging", set())):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                try:
                    if entry.is_file() and entry.name not in keep and entry.stat().st_mtime < older_than:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # committed or cancelled meanwhile
        return removed

    def sessions_without_data(self, live: set[str]) -> set[str]:
        """Those of `live` with no staging file: they died in the middle of their commit (the file
        moved into the store, the transaction did not commit) and can never be finished."""
        staged = {entry.name for entry in os.scandir(self.staging) if entry.is_file()}
        return live - staged

    def _place(self, staged: Path, digest: str) -> None:
        target = blob_path(self.root, digest)
        if target.exists():
            staged.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        # With SQLite (synchronous=NORMAL) the last transactions may be lost on a power loss, and
        # so may the rename when the directory is not fsynced: the two stay in step, and a blob
        # is never partial, because its bytes were fsynced before the rename. With PostgreSQL a
        # committed row survives a power loss, so the rename must too (`fsync_dirs`). Syncing
        # the directory on every blob made small pushes 30-40 % slower here.
        if self.fsync_dirs:
            _fsync(target.parent, os.O_RDONLY | os.O_DIRECTORY)
