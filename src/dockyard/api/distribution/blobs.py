"""GET, HEAD and DELETE /v2/<name>/blobs/<digest>."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from dockyard.api.credentials import client_address
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.errors import API_VERSION
from dockyard.auth.service import Caller
from dockyard.api.threads import run_sync


async def get_blob(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull",))
    path, size = await run_sync(ctx.blobs.locate, name, digest)
    headers = {**API_VERSION, "Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Cache-Control": "max-age=31536000"}
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        headers["Accept-Ranges"] = "bytes"
        return Response(b"", headers=headers, media_type="application/octet-stream")
    asked = request.headers.get("range")
    if asked is not None:
        if_range = request.headers.get("if-range")
        # A stale If-Range asks for the whole blob, whatever the Range (RFC 9110, 13.1.5).
        verdict = range_verdict(asked, size) if if_range is None or if_range == headers["ETag"] else False
        if verdict is None:
            return Response(status_code=416, headers={**API_VERSION, "Content-Range": f"bytes */{size}", "Content-Length": "0"})
        if not verdict:
            # Ignored (RFC 9110 lets a server ignore a Range it does not serve): the whole blob,
            # 200. The header goes from the scope FileResponse reads, which would answer 400.
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
    # FileResponse answers Range requests with 206 and, on servers with the ASGI pathsend
    # extension (granian), hands the whole file to the server: no bytes pass through Python.
    return FileResponse(path, headers=headers, media_type="application/octet-stream", stat_result=None)


def range_verdict(value: str, size: int) -> bool | None:
    """What a blob GET does with its `Range` header: True to serve it (206), False to ignore it
    (200 with the whole blob), None when it cannot be satisfied (416 with `bytes */SIZE`).

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
    if not first:
        return True if int(last) > 0 and size > 0 else None
    start = int(first)
    if start >= size or (last and int(last) < start):
        return None
    return True


async def delete_blob(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("delete",))
    await run_sync(ctx.blobs.delete, name, digest)
    ctx.activity.record(caller.username, "blob.delete", f"{name}@{digest}", None, client_address(request))
    return Response(status_code=202, headers={**API_VERSION, "Content-Length": "0"})
