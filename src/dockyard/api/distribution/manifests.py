"""GET, HEAD, PUT and DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.bodies import BodyTooLarge, read_limited
from dockyard.api.distribution.access import origin_of
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.errors import API_VERSION
from dockyard.api.distribution.uploads import content_length
from dockyard.api.threads import run_sync
from dockyard.auth.service import Caller
from dockyard.core.errors import ManifestTooLarge, ManifestUnknown
from dockyard.core.digest import is_digest
from dockyard.core.manifest import accepts
from dockyard.registry.manifests import check_tag_params


def manifest_response(method: str, digest: str, media_type: str, content: bytes) -> Response:
    headers = {
        **API_VERSION,
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Content-Length": str(len(content)),
    }
    return Response(b"" if method == "HEAD" else content, headers=headers, media_type=media_type)


async def get_manifest(ctx: RegistryContext, request: Request, caller: Caller, name: str, reference: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull",))
    manifest = await run_sync(ctx.manifests.get, name, reference)
    guard = ctx.pull_guard
    if request.method == "GET" and guard is not None:  # the namespace's scan policy (registry/scans.py)
        if guard.stale:
            await run_sync(guard.refresh)
        if guard.needs_check(name):
            await run_sync(guard.check, name, manifest.digest, manifest.content, manifest.media_type)
    if request.method == "GET" and not is_digest(reference):
        ctx.activity.pulled(name, reference)
    # Go clients send one Accept header per media type: read them all.
    if not accepts(", ".join(request.headers.getlist("accept")), manifest.media_type):
        raise ManifestUnknown(f"manifest {reference} is a {manifest.media_type}, which the client does not accept")
    return manifest_response(request.method, manifest.digest, manifest.media_type, manifest.content)


async def _read_limited(request: Request, limit: int) -> bytes:
    length = content_length(request)
    if length is not None and length > limit:
        raise ManifestTooLarge(f"manifest is {length} bytes; the limit is {limit}")
    try:
        return await read_limited(request, limit)
    except BodyTooLarge:
        raise ManifestTooLarge(f"manifest is over the {limit}-byte limit") from None


async def put_manifest(ctx: RegistryContext, request: Request, caller: Caller, name: str, reference: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull", "push"))
    # `?tag=` on a push by digest (distribution-spec, end-7b): checked before the body is read;
    # the query string is not parsed at all on the common push without one.
    tags = check_tag_params(reference, request.query_params.getlist("tag")) if request.scope.get("query_string") else []
    data = await _read_limited(request, ctx.settings.limits.manifest_max_bytes)
    digest, subject = await run_sync(ctx.manifests.put, name, reference, data, request.headers.get("content-type"), tags,
                                     origin_of(request, caller))
    headers = {**API_VERSION, "Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"}
    if subject:
        headers["OCI-Subject"] = subject
    response = Response(status_code=201, headers=headers)
    # One OCI-Tag header per tag stored, as the spec asks (a dict holds one value per name).
    response.raw_headers.extend((b"oci-tag", tag.encode()) for tag in tags)
    return response


async def delete_manifest(ctx: RegistryContext, request: Request, caller: Caller, name: str, reference: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("delete",))
    await run_sync(ctx.manifests.delete, name, reference, origin_of(request, caller))
    return Response(status_code=202, headers={**API_VERSION, "Content-Length": "0"})
