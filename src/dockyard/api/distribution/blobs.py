"""GET, HEAD and DELETE /v2/<name>/blobs/<digest>."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.distribution.access import origin_of
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.blobsend import BlobBody
from dockyard.api.distribution.errors import API_VERSION, error_response
from dockyard.auth.service import Caller
from dockyard.api.threads import run_sync
from dockyard.core.errors import BlobUnknown


async def get_blob(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull",))
    size = await run_sync(ctx.blobs.stat, name, digest)
    headers = {**API_VERSION, "Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Cache-Control": "max-age=31536000",
               "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(b"", headers=headers, media_type="application/octet-stream")
    if ctx.blobs.redirect:
        url = await run_sync(ctx.blobs.redirect_url, digest)
        if url is not None:
            # Straight from the object store, which serves a Range itself; the URL is presigned
            # and short-lived, so only this caller's pull permission (checked above) lets it in.
            return Response(status_code=307, headers={**API_VERSION, "Location": url, "Docker-Content-Digest": digest,
                                                      "Content-Length": "0"})
    start, length, status = 0, size, 200
    asked = request.headers.get("range")
    if asked is not None:
        if_range = request.headers.get("if-range")
        # A stale If-Range asks for the whole blob, whatever the Range (RFC 9110, 13.1.5).
        verdict = byte_range(asked, size) if if_range is None or if_range == headers["ETag"] else False
        if verdict is None:
            return Response(status_code=416, headers={**API_VERSION, "Content-Range": f"bytes */{size}", "Content-Length": "0"})
        if isinstance(verdict, tuple):  # else ignored (RFC 9110 lets a server ignore a Range): the whole blob, 200
            start, end = verdict
            length, status = end - start + 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    headers["Content-Type"] = "application/octet-stream"

    def missing() -> Response:  # garbage collection removed the file since locate()
        return error_response(BlobUnknown(f"blob {digest} is recorded but its content is missing", {"digest": digest}))

    return BlobBody(ctx.blobs, digest, start, length, status, headers, missing,  # type: ignore[return-value]
                    server_copies=ctx.settings.server.engine == "granian")


def byte_range(value: str, size: int) -> tuple[int, int] | Literal[False] | None:
    """What a blob GET does with its `Range` header: the (first, last) byte to serve (206), False
    to ignore it (200 with the whole blob), None when it cannot be satisfied (416, `bytes */SIZE`).

    One `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range is served. Other units,
    several ranges (no registry client asks for them) and text that is no range are ignored.
    A range starting at or past the end, an empty suffix and an inverted one (`bytes=500-0`)
    cannot be satisfied: never a 400, which clients would take as a broken blob."""
    units, eq, spec = value.partition("=")
    if not eq or units.strip().lower() != "bytes" or "," in spec:
        return False
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash or not (first or last) or not all(p.isascii() and p.isdigit() for p in (first, last) if p):
        return False
    if not first:  # the last `last` bytes
        return (max(size - int(last), 0), size - 1) if int(last) > 0 and size > 0 else None
    start = int(first)
    if start >= size or (last and int(last) < start):
        return None
    return start, min(int(last), size - 1) if last else size - 1


async def delete_blob(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("delete",))
    await run_sync(ctx.blobs.delete, name, digest, origin_of(request, caller))
    return Response(status_code=202, headers={**API_VERSION, "Content-Length": "0"})
