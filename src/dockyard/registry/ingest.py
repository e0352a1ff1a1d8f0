"""Streaming a request body to a staging file while hashing it.

The event loop receives; a worker thread hashes and writes. Chunks are gathered into batches of
about 2 MiB (a list, never joined: one writev writes them) and handed over one at a time, so
receiving the next batch overlaps with hashing and writing the previous one (hashlib and
os.writev both release the GIL). The body is never held whole in memory: at most two batches
are in flight.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import AsyncIterator
from typing import Any

from dockyard.core.errors import SizeInvalid

BATCH = 2 << 20
INLINE_MAX = 256 << 10
MAX_IOV = 512  # well under IOV_MAX (1024 on Linux)
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


async def pump(stream: AsyncIterator[bytes], sink: FileSink, limit: int | None = None) -> int:
    """Copy `stream` into `sink`; returns the byte count. Raises SizeInvalid past `limit`.

    On any error (a client that disconnects raises from the stream) the pending write is waited
    for before the error propagates, so the caller can safely truncate or remove the file.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    batched = 0
    total = 0
    try:
        async for chunk in stream:
            if not chunk:
                continue
            total += len(chunk)
            if limit is not None and total > limit:
                raise SizeInvalid(f"body is longer than the {limit} bytes announced")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH or len(batch) >= MAX_IOV:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, sink.write, batch)
                batch, batched = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            if batched <= INLINE_MAX:
                sink.write(batch)
            else:
                await loop.run_in_executor(None, sink.write, batch)
    finally:
        if pending is not None:
            try:
                await pending
            except Exception:  # the original error matters more
                pass
    return total
