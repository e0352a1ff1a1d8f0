"""Starlette app: run on granian or uvicorn. PUT /upload, GET /blob, GET|HEAD /manifest, GET /stats, GET /ext"""
import hashlib, os, tempfile
from starlette.applications import Starlette
from starlette.responses import Response, FileResponse, JSONResponse
from starlette.routing import Route
from common import DATA_DIR, BLOB, STORE, MANIFEST_CT, LAST_CHUNKS, record_chunks

async def upload(request):
    h = hashlib.sha256()
    sizes = []
    fd, path = tempfile.mkstemp(dir=DATA_DIR)
    try:
        async for chunk in request.stream():
            if chunk:
                sizes.append(len(chunk))
                h.update(chunk)
                os.write(fd, chunk)  # small writes to page cache; no fsync
    finally:
        os.close(fd)
    record_chunks(sizes)
    return Response(h.hexdigest(), status_code=201, media_type="text/plain")

async def blob(request):
    return FileResponse(BLOB)

async def manifest(request):
    body, digest = STORE["latest"]
    # Starlette Response sets Content-Length; for HEAD the server must drop the body
    return Response(body, media_type=MANIFEST_CT, headers={"Docker-Content-Digest": digest})

async def stats(request):
    return JSONResponse(dict(LAST_CHUNKS))

async def ext(request):
    return JSONResponse({"extensions": list(request.scope.get("extensions", {}) or {}),
                         "asgi": request.scope.get("asgi"), "server": repr(request.scope.get("server"))})

app = Starlette(routes=[
    Route("/upload", upload, methods=["PUT"]),
    Route("/blob", blob, methods=["GET"]),
    Route("/manifest", manifest, methods=["GET", "HEAD"]),
    Route("/stats", stats),
    Route("/ext", ext),
])

def create_app():  # app factory for granian --factory / Granian(factory=True)
    return app
