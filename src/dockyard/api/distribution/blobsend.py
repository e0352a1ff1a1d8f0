"""Sending a stored blob's bytes to the client: the body of blob GETs, whole or one range.

The store opens the blob (a file, or an S3 GET) and yields its bytes; see storage/fsread.py for
why local files are not handed to the server's own file sending.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.registry.blobs import BlobService


class BlobBody:
    """An ASGI response with `length` bytes of the blob from `offset` as its body.

    The caller has built the status and headers (Content-Length, Content-Range…). If the blob
    is gone before anything is sent (garbage collection won a race) the answer is what
    `missing()` returns (a 404); if it is cut short while sending, the connection is closed
    mid-body, so the client sees a short read rather than wrong bytes."""

    def __init__(self, blobs: BlobService, digest: str, offset: int, length: int, status: int, headers: dict[str, str],
                 missing: Callable[[], ASGIApp], server_copies: bool) -> None:
        self.blobs = blobs
        self.digest = digest
        self.server_copies = server_copies
        self.offset = offset
        self.length = length
        self.status = status
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.missing = missing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reader = await self.blobs.open_range(self.digest, self.offset, self.length)
        except FileNotFoundError:
            await self.missing()(scope, receive, send)
            return
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
            if self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            remaining = self.length
            # `server_copies`: the server has copied a body chunk when `send` returns (granian
            # does; a test checks it), so the reader may reuse one buffer for every chunk.
            async for chunk in reader.chunks(self.server_copies):
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        finally:
            reader.close()
