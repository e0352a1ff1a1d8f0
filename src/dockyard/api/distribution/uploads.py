"""Blob uploads: POST /v2/<name>/blobs/uploads/ and PATCH/PUT/GET/DELETE on a session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.distribution.access import origin_of
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.errors import API_VERSION
from dockyard.api.threads import run_sync
from dockyard.auth.service import Caller
from dockyard.core.errors import SizeInvalid
from dockyard.registry.uploads import check_upload_digest_param, parse_content_range


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise SizeInvalid(f"invalid Content-Length {value[:40]!r}")
    return int(value)


def blob_length(ctx: RegistryContext, request: Request) -> int | None:
    """The Content-Length of a blob body, refused before anything is read when the store cannot
    take it (registry/uploads.py `check_room`: 413 for never, 507 for not now)."""
    length = content_length(request)
    if length is not None and length > 0:
        ctx.uploads.check_room(length)
    return length


def _session_headers(name: str, upload_id: str, offset: int) -> dict[str, str]:
    return {
        **API_VERSION,
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(offset - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _blob_created(name: str, digest: str) -> Response:
    return Response(status_code=201, headers={
        **API_VERSION, "Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"})


async def start_upload(ctx: RegistryContext, request: Request, caller: Caller, name: str, _: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    params = request.query_params
    mount = params.get("mount")
    if mount:
        source = params.get("from")
        may_read = lambda repo: caller.may("repository", repo, "pull")  # noqa: E731
        if await run_sync(ctx.blobs.mount, name, mount, source, may_read, origin_of(request, caller)):
            return _blob_created(name, mount)
    digest = params.get("digest")
    if digest and not mount:
        check_upload_digest_param(digest)
        await ctx.uploads.monolithic(name, digest, request.stream(), blob_length(ctx, request), origin_of(request, caller))
        return _blob_created(name, digest)
    session = await run_sync(ctx.uploads.start, name)
    headers = _session_headers(name, session.id, 0)
    if ctx.settings.uploads.chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(ctx.settings.uploads.chunk_min_length)
    return Response(status_code=202, headers=headers)


async def patch_upload(ctx: RegistryContext, request: Request, caller: Caller, name: str, upload_id: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    chunk = parse_content_range(request.headers.get("content-range"))
    offset = await ctx.uploads.append(name, upload_id, request.stream(), chunk, blob_length(ctx, request))
    return Response(status_code=202, headers=_session_headers(name, upload_id, offset))


async def finish_upload(ctx: RegistryContext, request: Request, caller: Caller, name: str, upload_id: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    digest = check_upload_digest_param(request.query_params.get("digest"))
    chunk = parse_content_range(request.headers.get("content-range"))
    length = blob_length(ctx, request)
    body = request.stream() if length != 0 else None
    await ctx.uploads.finish(name, upload_id, digest, body, chunk, length, origin_of(request, caller))
    return _blob_created(name, digest)


async def upload_status(ctx: RegistryContext, request: Request, caller: Caller, name: str, upload_id: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    session = await run_sync(ctx.uploads.get, name, upload_id)
    return Response(status_code=204, headers=_session_headers(name, upload_id, session.offset))


async def cancel_upload(ctx: RegistryContext, request: Request, caller: Caller, name: str, upload_id: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    await run_sync(ctx.uploads.cancel, name, upload_id)
    return Response(status_code=204, headers={**API_VERSION, "Content-Length": "0"})
