"""The single table from domain errors to HTTP status codes, and the spec's JSON error body."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from dockyard.core import errors as e

# Most specific class first: ManifestTooLarge is a ManifestInvalid, BlobTooLarge a SizeInvalid.
STATUS: list[tuple[type[e.RegistryError], int]] = [
    (e.ManifestTooLarge, 413),
    (e.BlobTooLarge, 413),
    (e.BlobUnknown, 404),
    (e.BlobUploadUnknown, 404),
    (e.ManifestUnknown, 404),
    (e.NameUnknown, 404),
    (e.BlobUploadInvalid, 400),
    (e.DigestInvalid, 400),
    (e.ManifestBlobUnknown, 400),
    (e.ManifestInvalid, 400),
    (e.NameInvalid, 400),
    (e.SizeInvalid, 400),
    (e.PaginationNumberInvalid, 400),
    (e.TagInvalid, 400),
    (e.RangeInvalid, 416),
    (e.Unauthorized, 401),
    (e.Denied, 403),
    (e.Unsupported, 415),
    (e.TooManyRequests, 429),
]

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


def status_of(exc: e.RegistryError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return json.dumps({"errors": [error]}).encode()


def error_response(exc: e.RegistryError, headers: dict[str, str] | None = None, status: int | None = None) -> Response:
    # The spec's code for a bad chunk range is BLOB_UPLOAD_INVALID, answered with 416.
    code = "BLOB_UPLOAD_INVALID" if isinstance(exc, e.RangeInvalid) else exc.code
    return Response(
        error_body(code, exc.message, exc.detail),
        status_code=status or status_of(exc),
        media_type="application/json",
        headers={**API_VERSION, **(headers or {})},
    )
