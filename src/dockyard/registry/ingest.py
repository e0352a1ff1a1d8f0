"""Streaming a request body into the blob store's staging while hashing it.

The event loop receives; a worker thread hashes and writes. Chunks are gathered into batches of
about 2 MiB (a list, never joined: one writev writes them) and handed over one at a time, so
receiving the next batch overlaps with hashing and writing the previous one (hashlib and
os.writev, like the S3 store's part uploads, release the GIL). The body is never held whole in memory: at most two batches
are in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dockyard.core.errors import SizeInvalid
from dockyard.storage.base import Writer

BATCH = 2 << 20
INLINE_MAX = 256 << 10
MAX_IOV = 512  # well under IOV_MAX (1024 on Linux)


async def pump(stream: AsyncIterator[bytes], sink: Writer, limit: int | None = None) -> int:
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
