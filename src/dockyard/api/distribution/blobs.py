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
    # FileResponse answers Range requests with 206 and, on servers with the ASGI pathsend
    # extension (granian), hands the whole file to the server: no bytes pass through Python.
    return FileResponse(path, headers=headers, media_type="application/octet-stream", stat_result=None)


async def delete_blob(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("delete",))
    await run_sync(ctx.blobs.delete, name, digest)
    ctx.activity.record(caller.username, "blob.delete", f"{name}@{digest}", None, client_address(request))
    return Response(status_code=202, headers={**API_VERSION, "Content-Length": "0"})
