"""Benchmark: the console's image-versions page of a repository with thousands of tags.

Starts a real `dockyard serve` (SQLite by default, or --database-url), pushes N tags through the
registry API (single-platform images and multi-architecture indexes, mixed), logs in to the
console, and requests the versions page with every sort order and at the first, middle and last
page, `--rounds` times each. Prints the server time (the page's `Server-Timing: app;dur=` header,
measured around the view) and the client-side time, as median / p95 / max in milliseconds.

    .venv/bin/python bench/console_versions.py [--tags 5000] [--rounds 20] [--database-url URL]

Loopback only; every loop is bounded by --tags and --rounds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PASSWORD = "bench-password"
REPO = "bench/versions"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(client: httpx.Client, data: bytes) -> dict[str, object]:
    digest = _digest(data)
    r = client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest}, content=data,
                    headers={"Content-Type": "application/octet-stream"})
    r.raise_for_status()
    return {"digest": digest, "size": len(data)}


def _image(client: httpx.Client, arch: str, n: int) -> tuple[bytes, str]:
    layer = os.urandom(2048) + str(n).encode()
    layer_desc = {"mediaType": OCI_LAYER, **_push_blob(client, layer)}
    config = json.dumps({"architecture": arch, "os": "linux", "created": "2026-12-01T00:00:00Z",
                         "config": {"Cmd": ["/app"], "Labels": {"n": str(n)}},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
                         "history": [{"created_by": f"COPY app-{n} /app"}]}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, **_push_blob(client, config)},
                           "layers": [layer_desc]}).encode()
    return manifest, _digest(manifest)


def populate(base: str, tags: int) -> None:
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    with httpx.Client(base_url=base, headers={"Authorization": f"Basic {auth}"}, timeout=60) as client:
        images = []
        for n, arch in enumerate(("amd64", "arm64", "amd64", "arm64")):
            manifest, digest = _image(client, arch, n)
            client.put(f"/v2/{REPO}/manifests/{digest}", content=manifest,
                       headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
            images.append((manifest, digest, arch))
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": len(m), "platform": {"os": "linux", "architecture": a}}
            for m, d, a in images[:2]]}).encode()
        for i in range(tags):
            if i % 5 == 0:  # every fifth tag is a multi-architecture index
                body, media_type = index, OCI_INDEX
            else:
                body, media_type = images[i % 4][0], OCI_MANIFEST
            client.put(f"/v2/{REPO}/manifests/v{i:05d}", content=body,
                       headers={"Content-Type": media_type}).raise_for_status()


def login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, "no csrf token on the login page"
    r = client.post("/console/login", data={"csrf": csrf.group(1), "username": "admin", "password": PASSWORD})
    assert r.status_code in (200, 303), r.status_code
    return client


def measure(client: httpx.Client, tags: int, rounds: int) -> list[tuple[str, list[float], list[float]]]:
    pages = (tags + 49) // 50
    results = []
    for sort in ("pushed", "name", "pulled", "size"):
        for page in (1, max(1, pages // 2), pages):
            server, wall = [], []
            for _ in range(rounds):
                started = time.perf_counter()
                r = client.get(f"/console/repo/{REPO}/-/versions", params={"sort": sort, "page": page})
                wall.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, (r.status_code, r.text[:500])
                assert r.text.count('data-testid="version-row"') == min(50, tags - (page - 1) * 50)
                server.append(float(r.headers["server-timing"].split("dur=")[1]))
            results.append((f"sort={sort} page={page}", server, wall))
    return results


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered):.1f} | {p95:.1f} | {ordered[-1]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dockyard-bench-console-"))
    port = _port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DOCKYARD_ADMIN_PASSWORD": PASSWORD, "DOCKYARD_SERVER__LOG_LEVEL": "warning",
           "DOCKYARD_GC__INTERVAL_SECONDS": "0"}
    if args.database_url:
        env["DOCKYARD_DATABASE__URL"] = args.database_url
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "serve", "--listen", f"127.0.0.1:{port}",
                             "--data", str(data)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        started = time.perf_counter()
        populate(base, args.tags)
        print(f"# pushed {args.tags} tags in {time.perf_counter() - started:.1f} s "
              f"({'PostgreSQL' if args.database_url else 'SQLite'})")
        client = login(base)
        try:
            results = measure(client, args.tags, args.rounds)
        finally:
            client.close()
        print(f"\n{args.tags} tags, {args.rounds} requests each; milliseconds\n")
        print("| request | server median | p95 | max | client median | p95 | max |")
        print("|---|---|---|---|---|---|---|")
        for name, server, wall in results:
            print(f"| {name} | {_stats(server)} | {_stats(wall)} |")
        everything = [v for _, server, _ in results for v in server]
        print(f"\nall server times: max {max(everything):.1f} ms; under 300 ms: {max(everything) < 300}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
