"""Lists: GET /v2/ (the base), /v2/<name>/tags/list, /v2/_catalog and /v2/<name>/referrers/<digest>."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.errors import API_VERSION
from dockyard.api.threads import run_sync
from dockyard.auth.service import Caller
from dockyard.core.errors import NameInvalid, PaginationNumberInvalid, RegistryError, TagInvalid, Unauthorized
from dockyard.core.manifest import OCI_INDEX
from dockyard.core.names import is_valid_tag, validate_name
from dockyard.api.distribution.access import AccessError

CATALOG_DEFAULT_PAGE = 1000


def _page_params(request: Request, limit: int, valid_last: Callable[[str], bool], last_error: type[RegistryError],
                 ) -> tuple[int | None, str | None]:
    """`n` and `last`. A bad `n` is distribution's PAGINATION_NUMBER_INVALID (the OCI table has no
    code for it); a `last` that no entry could be named is `last_error` (NAME_INVALID for the
    catalog, TAG_INVALID for tags): the spec's codes, so clients can act on them."""
    n_text = request.query_params.get("n")
    last = request.query_params.get("last") or None
    if last is not None and not valid_last(last):
        raise last_error(f"invalid last={last[:140]!r}: not a name this list could hold", {"last": last[:300]})
    if n_text is None or n_text == "":
        return None, last
    # ASCII digits only: int() also takes "1_000", " 5", "+5" and non-ASCII digits.
    n = int(n_text) if n_text.isascii() and n_text.isdigit() else -1
    if n < 0:
        raise PaginationNumberInvalid(f"invalid page size n={n_text[:20]!r}: expected a non-negative integer")
    return min(n, limit), last


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except NameInvalid:
        return False
    return True


def _json(data: object, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data).encode(), media_type="application/json", headers={**API_VERSION, **(headers or {})})


def _next_link(path: str, n: int, last: str) -> dict[str, str]:
    return {"Link": f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'}


async def base(ctx: RegistryContext, request: Request, caller: Caller, _name: str, _ref: str) -> Response:
    if not caller.authenticated:
        raise AccessError(Unauthorized("authentication required"), ctx.gate.challenge(request, None))
    return _json({})


async def tags_list(ctx: RegistryContext, request: Request, caller: Caller, name: str, _: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull",))
    n, last = _page_params(request, ctx.settings.limits.page_size_max, is_valid_tag, TagInvalid)
    fetch = None if n is None else n + 1
    found = await run_sync(ctx.manifests.tags, name, last, fetch)
    headers: dict[str, str] = {}
    if n is not None and len(found) > n:
        found = found[:n]
        if found:
            headers = _next_link(f"/v2/{name}/tags/list", n, found[-1])
    return _json({"name": name, "tags": found}, headers)


async def catalog(ctx: RegistryContext, request: Request, caller: Caller, _name: str, _ref: str) -> Response:
    ctx.gate.require(request, caller, "registry", "catalog", ("*",))
    n, last = _page_params(request, ctx.settings.limits.page_size_max, _valid_name, NameInvalid)
    n = CATALOG_DEFAULT_PAGE if n is None else n
    found = await run_sync(_visible_page, ctx, caller, last, n + 1)
    headers: dict[str, str] = {}
    if len(found) > n:
        found = found[:n]
        if found:
            headers = _next_link("/v2/_catalog", n, found[-1])
    return _json({"repositories": found}, headers)


def _visible_page(ctx: RegistryContext, caller: Caller, last: str | None, want: int) -> list[str]:
    """Up to `want` repository names after `last` that the caller may pull (the catalog lists
    only what the caller may see)."""
    auth = ctx.gate.auth
    principal = caller.principal
    if caller.token is not None:
        principal = auth.principal_from_subject(caller.token.subject, caller.token.temp_id)
    content = ctx.manifests.content
    if principal is not None and principal.is_admin:
        return content.catalog(last, want)
    out: list[str] = []
    while len(out) < want:
        batch = content.catalog(last, max(want, 100))
        if not batch:
            break
        out.extend(auth.visible(principal, batch))
        last = batch[-1]
    return out[:want]


async def referrers(ctx: RegistryContext, request: Request, caller: Caller, name: str, digest: str) -> Response:
    ctx.gate.require(request, caller, "repository", name, ("pull",))
    artifact_type = request.query_params.get("artifactType") or None
    body = await run_sync(ctx.manifests.referrers, name, digest, artifact_type)
    headers = {**API_VERSION}
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    return Response(body, media_type=OCI_INDEX, headers=headers)
