"""What the HTTP edges (/v2, /auth/token, /api/v1) read from a request to identify a caller."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request


def basic_credentials(value: str) -> tuple[str, str] | None:
    """(username, password) from the part after `Basic `, or None when it is malformed
    (not base64, not UTF-8, no ':' or an empty user name)."""
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII; UnicodeDecodeError is one too
        return None
    return (username, password) if sep and username else None


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
