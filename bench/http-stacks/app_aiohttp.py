"""aiohttp app on uvloop. Run: python app_aiohttp.py PORT"""
import asyncio, hashlib, os, sys, tempfile
import uvloop
from aiohttp import web
from common import DATA_DIR, BLOB, STORE, MANIFEST_CT, LAST_CHUNKS, record_chunks

async def upload(request):
    h = hashlib.sha256(); sizes = []
    fd, path = tempfile.mkstemp(dir=DATA_DIR)
    try:
        async for chunk in request.content.iter_any():
            sizes.append(len(chunk)); h.update(chunk); os.write(fd, chunk)
    finally:
        os.close(fd)
    record_chunks(sizes)
    return web.Response(text=h.hexdigest(), status=201)

async def blob(request):
    return web.FileResponse(BLOB)

async def manifest(request):
    body, digest = STORE["latest"]
    return web.Response(body=body, content_type=MANIFEST_CT, headers={"Docker-Content-Digest": digest})

async def stats(request):
    return web.json_response(dict(LAST_CHUNKS))

app = web.Application(client_max_size=1 << 40)
app.add_routes([web.put("/upload", upload), web.get("/blob", blob),
                web.get("/manifest", manifest),  # add_get adds HEAD automatically (allow_head=True)
                web.get("/stats", stats)])
if __name__ == "__main__":
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
