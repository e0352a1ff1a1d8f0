"""The /v2 router: one ASGI app that parses the path, identifies the caller and calls a handler.

Repository names contain slashes, so routes are matched from the end of the path. The name is
validated before anything else, so no handler ever sees a name outside the spec's grammar.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.distribution import blobs, listing, manifests, uploads
from dockyard.api.distribution.access import AccessError
from dockyard.api.distribution.context import RegistryContext
from dockyard.api.distribution.errors import API_VERSION, error_body, error_response
from dockyard.auth.service import Caller
from dockyard.core.errors import BlobUploadInvalid, ManifestInvalid, RangeInvalid, RegistryError, SizeInvalid
from dockyard.core.names import validate_name

log = logging.getLogger("dockyard.api")

Handler = Callable[[RegistryContext, Request, Caller, str, str], Awaitable[Response]]

# (pattern, {method: handler}); the first match wins, so uploads come before blobs.
_NAME = r"(?P<name>(?s:.+?))"  # (?s): a newline in the name reaches validate_name (NAME_INVALID)
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^/v2/?$"), {"GET": listing.base, "HEAD": listing.base}),
    (re.compile(r"^/v2/_catalog$"), {"GET": listing.catalog}),
    (re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[^/]+)$"),
     {"GET": manifests.get_manifest, "HEAD": manifests.get_manifest, "PUT": manifests.put_manifest,
      "DELETE": manifests.delete_manifest}),
    (re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$"), {"POST": uploads.start_upload}),
    (re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<ref>[^/]+)$"),
     {"PATCH": uploads.patch_upload, "PUT": uploads.finish_upload, "GET": uploads.upload_status,
      "DELETE": uploads.cancel_upload}),
    (re.compile(rf"^/v2/{_NAME}/blobs/(?P<ref>[^/]+)$"),
     {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob}),
    (re.compile(rf"^/v2/{_NAME}/tags/list$"), {"GET": listing.tags_list}),
    (re.compile(rf"^/v2/{_NAME}/referrers/(?P<ref>[^/]+)$"), {"GET": listing.referrers}),
]


def _plain_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(code, message), status_code=status, media_type="application/json",
                    headers={**API_VERSION, **(headers or {})})


# A /v2 path that no route matches names no blob, upload, manifest or repository the registry
# could hold: it is answered with the spec's code for what it points at, which clients act on.
_UNKNOWN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/blobs/uploads(?:/|$)"), "BLOB_UPLOAD_UNKNOWN"),
    (re.compile(r"/blobs(?:/|$)"), "BLOB_UNKNOWN"),
    (re.compile(r"/manifests(?:/|$)"), "MANIFEST_UNKNOWN"),
]


def _no_route(path: str) -> Response:
    code = next((code for pattern, code in _UNKNOWN if pattern.search(path)), "NAME_UNKNOWN")
    return _plain_error(404, code, f"no such endpoint: {path[:200]}")


def _out_of_space(exc: BaseException) -> str | None:
    """Why the storage is full, when `exc` says so: ENOSPC/EDQUOT from the file system, or the
    database's own "disk full" (SQLite SQLITE_FULL, PostgreSQL 53100) wrapped by SQLAlchemy."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return exc.strerror or str(exc)
    # sqlalchemy.exc.DBAPIError wraps the driver's error; statements on the driver's own cursor
    # (meta/raw.py) raise it bare.
    orig = getattr(exc, "orig", exc)
    if orig is not None and (getattr(orig, "sqlite_errorcode", None) == 13 or getattr(orig, "sqlstate", None) == "53100"):
        return f"database: {str(orig).splitlines()[0][:200]}"
    return None


def _cut_short(request: Request) -> Response:
    """The answer to a request whose body ended before it was complete."""
    if "content-length" in request.headers:
        error: RegistryError = SizeInvalid("the request body ended before Content-Length bytes arrived")
    elif "/manifests/" in request.scope["path"]:
        error = ManifestInvalid("the manifest ended before its last chunk arrived")
    else:
        error = BlobUploadInvalid("the request body ended before its last chunk arrived")
    return error_response(error, {"Connection": "close"})


def _has_body(scope: Scope) -> bool:
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return False
    for key, value in scope["headers"]:
        if key == b"content-length":
            return value.strip() not in (b"0", b"")
        if key == b"transfer-encoding":
            return True
    return False


class _BodyWatch:
    """The request's `receive`, noting whether the body was read to its end."""

    __slots__ = ("receive", "ended")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.ended = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if not message.get("more_body", False):
            self.ended = True
        return message


class RegistryAPI:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    def match(self, path: str) -> tuple[dict[str, Handler], str, str] | None:
        for pattern, methods in ROUTES:
            m = pattern.match(path)
            if m:
                groups = m.groupdict()
                return methods, groups.get("name") or "", groups.get("ref") or ""
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = _BodyWatch(receive) if _has_body(scope) else None
        request = Request(scope, body or receive)
        try:
            response = await self.handle(request)
        except ClientDisconnect:
            # The body ended early: nothing of it was stored. A client that half-closed its side
            # (shutdown SHUT_WR) still reads the answer, and granian, which signals the half-close
            # as `http.disconnect`, would otherwise answer a bare 500 of its own.
            try:
                await _cut_short(request)(scope, receive, send)
            except OSError:
                pass  # the client is gone altogether: nobody to tell
            return
        if body is not None and not body.ended and response.status_code >= 400:
            # Refused before its body was read (a full disk, a digest mismatch, no access): the
            # rest of the body is still on its way, so the connection cannot carry another
            # request. Say so, or a client may send its next request on a connection the server
            # is about to close ("Server disconnected without sending a response").
            response.headers["Connection"] = "close"
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        path = request.scope["path"]
        found = self.match(path)
        if found is None:
            return _no_route(path)
        methods, name, ref = found
        handler = methods.get(request.method)
        if handler is None:
            return _plain_error(405, "UNSUPPORTED", f"{request.method} is not allowed here",
                                {"Allow": ", ".join(sorted(methods))})
        if "\x00" in request.scope.get("query_string", b"").decode("latin-1").replace("%00", "\x00"):
            # No query parameter may carry a NUL: PostgreSQL text cannot hold one.
            return _plain_error(400, "UNSUPPORTED", "NUL bytes are not allowed in query parameters")
        try:
            if name:
                validate_name(name)
            caller = await self.ctx.gate.caller(request)
            return await handler(self.ctx, request, caller, name, ref)
        except AccessError as exc:
            headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
            return error_response(exc.error, headers)
        except RangeInvalid as exc:
            headers = {}
            if isinstance(exc.detail, dict) and "offset" in exc.detail:
                offset = int(exc.detail["offset"])
                headers = {"Location": f"/v2/{name}/blobs/uploads/{ref}", "Range": f"0-{max(offset - 1, 0)}",
                           "Docker-Upload-UUID": ref}
            return error_response(exc, headers)
        except RegistryError as exc:
            retry = exc.detail.get("retry_after") if isinstance(exc.detail, dict) else None
            return error_response(exc, {"Retry-After": str(retry)} if retry else None)
        except ClientDisconnect:
            raise
        except Exception as exc:
            full = _out_of_space(exc)
            if full:
                # The upload code has already cut the staging file back (or removed it).
                log.error("insufficient storage on %s %s: %s", request.method, path[:200], full)
                return _plain_error(507, "UNKNOWN", f"insufficient storage: {full}")
            log.exception("internal error on %s %s", request.method, path[:200])
            return _plain_error(500, "UNKNOWN", "internal server error")
