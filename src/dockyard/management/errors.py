"""Errors of the management use-cases. `code` names the kind; the API maps it to an HTTP status."""

from __future__ import annotations

from typing import Any


class ManagementError(Exception):
    code = "error"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(ManagementError):
    code = "not_found"


class Forbidden(ManagementError):
    code = "forbidden"


class Conflict(ManagementError):
    code = "conflict"


class Invalid(ManagementError):
    code = "invalid"


class Unauthenticated(ManagementError):
    code = "unauthenticated"
