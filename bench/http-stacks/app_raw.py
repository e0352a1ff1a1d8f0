"""Raw ASGI callable, /manifest only (GET/HEAD)."""
from common import STORE, MANIFEST_CT
body, digest = STORE["latest"]
HEADERS = [(b"content-type", MANIFEST_CT.encode()), (b"content-length", str(len(body)).encode()),
           (b"docker-content-digest", digest.encode())]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
BODY = {"type": "http.response.body", "body": body}
EMPTY = {"type": "http.response.body", "body": b""}
NF = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}

async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif m["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"}); return
        return
    if scope["path"] == "/manifest":
        await send(START)
        await send(EMPTY if scope["method"] == "HEAD" else BODY)
    else:
        await send(NF); await send(EMPTY)
