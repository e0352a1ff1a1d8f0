"""Domain errors, named after the OCI Distribution Spec error codes.

Services raise these; `dockyard.api.distribution.errors` is the single table that maps each
code to an HTTP status and renders the spec's JSON body. Nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class: `code` is the spec's error code, `message` is for people, `detail` for tools."""

    code = "UNKNOWN"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"


class ManifestTooLarge(ManifestInvalid):
    """A manifest over the configured limit (4 MiB by default); answered 413."""


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"


class NameInvalid(RegistryError):
    code = "NAME_INVALID"


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"


class BlobTooLarge(SizeInvalid):
    """A body announced larger than the storage could ever hold; answered 413 before reading it."""


class RangeInvalid(RegistryError):
    """An out-of-order or malformed chunk (`Content-Range`); answered 416."""

    code = "RANGE_INVALID"


class PaginationNumberInvalid(RegistryError):
    """A bad `n` on tags/list or _catalog. The OCI table has no code for it; this is the one
    distribution (the reference registry the spec grew from) answers, so clients know it."""

    code = "PAGINATION_NUMBER_INVALID"


class TagInvalid(RegistryError):
    """A `?tag=` of a manifest PUT by digest (or a `last` of tags/list) that is no valid tag
    name. Not in the OCI table; distribution registers TAG_INVALID for a manifest's tag."""

    code = "TAG_INVALID"


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"


class Denied(RegistryError):
    code = "DENIED"


class Unsupported(RegistryError):
    code = "UNSUPPORTED"


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
