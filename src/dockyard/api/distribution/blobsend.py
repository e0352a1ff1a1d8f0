"""Sending a stored blob's bytes to the client: the body of blob GETs, whole or one range.

Why not the server's file sending (ASGI `http.response.pathsend`)? granian serves a path by
reading it through tokio's blocking thread pool in 128 KiB steps: every step is a read on one
thread and a hand-off to the runtime thread that writes the socket, two wake-ups per 128 KiB
(~8,200 futex calls and ~7,800 context switches per 512 MiB, measured with strace and perf
here). A single stream is then bound by that ping-pong latency, which costs more on CPUs and
hypervisors where cross-thread wake-ups are dear (a single 512 MiB pull ran at 0.6-0.85 of the
reference registry on Intel Xeon machines).

Here the event loop reads 1 MiB at a time straight from the page cache with
`preadv2(RWF_NOWAIT)`, into one buffer per response, and hands it to the server, which copies
it before `send` returns (so the buffer is reused at once: no allocation per chunk, no page
faults). Reading chunk k+1 overlaps the server writing chunk k. A read that would block on the
disk (data not cached) finishes in a worker thread instead, so a cold blob never stalls the
event loop. Per 1 MiB that is one hand-off to the server instead of sixteen.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

CHUNK_BYTES = 1 << 20
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)


class BlobBody:
    """An ASGI response with `length` bytes of the file at `path` from `offset` as its body.

    The caller has built the status and headers (Content-Length, Content-Range…). If the file
    is gone before anything is sent (garbage collection won a race) the answer is what
    `missing()` returns (a 404); if it is cut short while sending, the connection is closed
    mid-body, so the client sees a short read rather than wrong bytes."""

    def __init__(self, path: str, offset: int, length: int, status: int, headers: dict[str, str],
                 missing: Callable[[], ASGIApp], server_copies: bool) -> None:
        self.server_copies = server_copies
        self.path = path
        self.offset = offset
        self.length = length
        self.status = status
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.missing = missing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            await self.missing()(scope, receive, send)
            return
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            if self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await _stream(fd, self.offset, self.length, send, self.server_copies)
        finally:
            os.close(fd)


async def _stream(fd: int, offset: int, length: int, send: Send, server_copies: bool) -> None:
    """`server_copies`: the server has copied a body chunk when `send` returns (granian does; a
    test checks it), so one buffer serves every chunk. Otherwise each chunk is new bytes."""
    loop = asyncio.get_running_loop()
    buf = bytearray(min(CHUNK_BYTES, length))
    view = memoryview(buf)
    nowait = _NOWAIT
    remaining = length
    while remaining:
        want = min(len(buf), remaining)
        got = 0
        if nowait:
            try:
                got = os.preadv(fd, [view[:want]], offset, nowait)
            except BlockingIOError:
                got = 0
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                nowait = 0  # a filesystem without RWF_NOWAIT: always read in a thread
        if got < want:
            # Not (all) in the page cache: the rest may wait for the disk, off the event loop.
            more = await loop.run_in_executor(None, os.preadv, fd, [view[got:want]], offset + got)
            got += more
            if more == 0:
                raise OSError(errno.EIO, f"blob file ended {remaining} bytes early")
        offset += got
        remaining -= got
        body = buf if server_copies and got == len(buf) else bytes(view[:got])
        await send({"type": "http.response.body", "body": body, "more_body": remaining > 0})
