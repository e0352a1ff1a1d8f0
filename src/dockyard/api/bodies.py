"""Small request bodies read whole (forms, JSON) for the HTTP edges: one place that enforces a
byte limit while reading, not only on Content-Length (a chunked body says no length, and is
read before a login or CSRF check could refuse it), and names a body's media type."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    pass


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower-case ('' when there is none)."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; raises BodyTooLarge (as soon as the announced
    length or the bytes received go over it)."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)
