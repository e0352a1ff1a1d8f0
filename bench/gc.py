"""Garbage collection of N unreferenced blobs: Dockyard online (a GC job in `dockyard serve` while a
client keeps pushing images) against the reference registry's offline `garbage-collect` (Debian's
docker-registry, CNCF distribution 2.8.2) on the same set of blobs.

    python bench/gc.py --blobs 1000000 --dir /tmp/bench-gc                       # fs
    python bench/gc.py --blobs 100000 --dir /tmp/bench-gc --s3 ENDPOINT ACCESS SECRET  # Ceph RGW

Both registries get the same N digests, each a small file (or object) that nothing references:
Dockyard as blob rows older than the grace period plus files in its store; the reference as blob
data files in its layout with no repository. Then:

- the reference: `docker-registry garbage-collect` on its config, timed (it runs offline: the
  registry must not serve while it does);
- Dockyard: `dockyard serve` on the data, a pusher thread pushing small images the whole time,
  `POST /api/v1/gc`, timed until the job has succeeded; every image pushed meanwhile must pull
  back byte for byte afterwards.

Prints a table and writes the numbers as JSON (--json). Loopback only; bounded by --blobs and
--timeout. Remove --dir afterwards: it holds 2 x N files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dockyard.meta.db import Database, utcnow  # noqa: E402
from dockyard.meta.migrate import upgrade  # noqa: E402
from dockyard.meta.tables import blobs  # noqa: E402

PASSWORD = "gc-bench-password"
BODY = b"x" * 100  # each blob's bytes: small, so the run measures GC, not the disk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def digests(n: int) -> list[str]:
    return ["sha256:" + hashlib.sha256(f"gc-bench {i}".encode()).hexdigest() for i in range(n)]


# -- the data ---------------------------------------------------------------------------------------
def s3_client(endpoint: str, access: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                        config=Config(region_name="us-east-1", s3={"addressing_style": "path"},
                                      max_pool_connections=32, retries={"max_attempts": 5}))


def put_objects(s3: Any, bucket: str, keys: list[str]) -> None:
    def put(chunk: list[str]) -> None:
        for key in chunk:
            s3.put_object(Bucket=bucket, Key=key, Body=BODY)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, [keys[i:i + 1000] for i in range(0, len(keys), 1000)]))


def prepare_dockyard(data: Path, names: list[str], s3: Any) -> None:
    data.mkdir(parents=True)
    db = Database(f"sqlite:///{data / 'dockyard.db'}")
    upgrade(db)
    old = utcnow() - timedelta(days=30)
    with db.write() as conn:
        for i in range(0, len(names), 10000):
            conn.execute(blobs.insert(), [{"digest": d, "size": len(BODY), "created_at": old} for d in names[i:i + 10000]])
    db.dispose()
    if s3 is not None:
        put_objects(s3, "gc-new", [f"blobs/sha256/{d[7:9]}/{d[7:]}" for d in names])
        return
    root = data / "blobs"
    for d in names:
        path = root / "sha256" / d[7:9] / d[7:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(BODY)


def prepare_reference(base: Path, names: list[str], s3: Any, s3_args: list[str] | None) -> Path:
    base.mkdir(parents=True)
    keys = [f"docker/registry/v2/blobs/sha256/{d[7:9]}/{d[7:]}/data" for d in names]
    if s3 is not None:
        endpoint, access, secret = s3_args  # type: ignore[misc]
        storage = (f"  s3:\n    region: us-east-1\n    regionendpoint: {endpoint}\n    bucket: gc-ref\n"
                   f"    accesskey: {access}\n    secretkey: {secret}\n    secure: false\n    v4auth: true\n"
                   "    forcepathstyle: true\n")
        put_objects(s3, "gc-ref", keys)
        s3.put_object(Bucket="gc-ref", Key="docker/registry/v2/repositories/.keep", Body=b"")  # its mark phase needs the path
    else:
        storage = f"  filesystem:\n    rootdirectory: {base / 'data'}\n"
        (base / "data" / "docker/registry/v2/repositories").mkdir(parents=True)  # its mark phase needs one
        for key in keys:
            path = base / "data" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(BODY)
    config = base / "config.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n" + storage
                      + "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n")
    return config


def count_left(keys: list[str], root: Path, s3: Any, bucket: str, prefix: str) -> int:
    """How many of `keys` (the benchmark's own blobs) are still stored."""
    if s3 is not None:
        wanted, left = set(keys), 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            left += sum(1 for o in page.get("Contents", []) if o["Key"] in wanted)
        return left
    return sum(1 for k in keys if (root / k).exists())


# -- the pusher ---------------------------------------------------------------------------------------
class Pusher(threading.Thread):
    """Pushes small images (config, layer, manifest by tag) until stopped; keeps what it pushed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.pushed: list[tuple[str, str, bytes, bytes]] = []  # (repo, tag, manifest, layer)
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=("admin", PASSWORD), timeout=60) as c:
            i = 0
            while not self.stop.is_set() and i < 100000:
                i += 1
                repo, tag = f"gcbench/app{i % 10}", f"t{i}"
                layer = os.urandom(2048)
                config = json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()
                try:
                    for blob in (config, layer):
                        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha(blob)}, content=blob)
                        r.raise_for_status()
                    manifest = json.dumps({
                        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                                   "size": len(config)},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                                    "size": len(layer)}]}).encode()
                    r = c.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                    r.raise_for_status()
                    self.pushed.append((repo, tag, manifest, layer))
                except httpx.HTTPError as exc:
                    self.failures.append(f"{repo}:{tag}: {exc}")

    def verify(self) -> int:
        """Every image pushed pulls back byte for byte; returns how many were checked."""
        with httpx.Client(base_url=self.url, auth=("admin", PASSWORD), timeout=60) as c:
            for repo, tag, manifest, layer in self.pushed:
                got = c.get(f"/v2/{repo}/manifests/{tag}",
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                assert got.status_code == 200 and got.content == manifest, (repo, tag, got.status_code)
                blob = c.get(f"/v2/{repo}/blobs/{sha(layer)}")
                assert blob.status_code == 200 and blob.content == layer, (repo, tag, blob.status_code)
        return len(self.pushed)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the runs -----------------------------------------------------------------------------------------
def run_reference(config: Path, timeout: float) -> float:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    subprocess.run(["/usr/bin/docker-registry", "garbage-collect", str(config)], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=timeout)
    return time.monotonic() - started


def run_dockyard(data: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    port = free_port()
    log = open(data.parent / "dockyard.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dockyard"), "serve", "--listen", f"127.0.0.1:{port}", "--data", str(data)],
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"dockyard did not start: see {log.name}")
            time.sleep(0.2)
        pusher = Pusher(url)
        pusher.start()
        time.sleep(2)  # pushes are going on before GC starts
        auth = ("admin", PASSWORD)
        started = time.monotonic()
        job_id = httpx.post(f"{url}/api/v1/gc", json={"dry_run": False}, auth=auth, timeout=30).json()["job_id"]
        while True:
            job = httpx.get(f"{url}/api/v1/jobs/{job_id}", auth=auth, timeout=30).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"GC job still {job['state']} after {timeout} s")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        pushes_during = len(pusher.pushed)
        pusher.stop.set()
        pusher.join(60)
        assert job["state"] == "succeeded", job
        checked = pusher.verify()
        return {"seconds": elapsed, "job": job, "pushes": pushes_during, "push_failures": pusher.failures[:5],
                "verified": checked}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blobs", type=int, default=10000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-gc"))
    ap.add_argument("--s3", nargs=3, metavar=("ENDPOINT", "ACCESS", "SECRET"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    names = digests(args.blobs)
    s3 = s3_client(*args.s3) if args.s3 else None
    env = {"DOCKYARD_ADMIN_PASSWORD": PASSWORD, "DOCKYARD_GC__INTERVAL_SECONDS": "0",
           "DOCKYARD_SERVER__LOG_LEVEL": "warning"}
    if s3 is not None:
        for bucket in ("gc-ref", "gc-new"):
            try:
                s3.create_bucket(Bucket=bucket)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
        endpoint, access, secret = args.s3
        env.update({"DOCKYARD_STORAGE__DRIVER": "s3", "DOCKYARD_STORAGE__S3__ENDPOINT": endpoint,
                    "DOCKYARD_STORAGE__S3__BUCKET": "gc-new", "DOCKYARD_STORAGE__S3__ACCESS_KEY_ID": access,
                    "DOCKYARD_STORAGE__S3__SECRET_ACCESS_KEY": secret, "DOCKYARD_STORAGE__S3__PATH_STYLE": "true"})
    t = time.monotonic()
    config = prepare_reference(args.dir / "ref", names, s3, args.s3)
    prepare_dockyard(args.dir / "new", names, s3)
    print(f"# {args.blobs} blobs written to each registry in {time.monotonic() - t:.0f} s", file=sys.stderr)

    ref_seconds = run_reference(config, args.timeout)
    ref_left = count_left([f"docker/registry/v2/blobs/sha256/{d[7:9]}/{d[7:]}/data" for d in names],
                          args.dir / "ref" / "data", s3, "gc-ref", "docker/registry/v2/blobs/")
    new = run_dockyard(args.dir / "new", env, args.timeout)
    new_left = count_left([f"blobs/sha256/{d[7:9]}/{d[7:]}" for d in names], args.dir / "new", s3, "gc-new", "blobs/")
    result = {
        "blobs": args.blobs, "storage": "s3 (Ceph RGW)" if s3 else "fs", "cpu": cpu_model(), "cores": os.cpu_count(),
        "reference_offline_seconds": round(ref_seconds, 2), "reference_left": ref_left,
        "dockyard_online_seconds": round(new["seconds"], 2), "dockyard_result": new["job"].get("result"),
        "dockyard_files_left": new_left, "pushes_during_gc": new["pushes"], "push_failures": new["push_failures"],
        "pushed_images_verified": new["verified"],
    }
    rate = lambda s: args.blobs / s if s else 0.0  # noqa: E731
    print(f"| | seconds | blobs/s |\n|---|---|---|\n"
          f"| reference `garbage-collect` (offline) | {ref_seconds:.1f} | {rate(ref_seconds):,.0f} |\n"
          f"| Dockyard GC job (online, {new['pushes']} images pushed meanwhile) | {new['seconds']:.1f} | "
          f"{rate(new['seconds']):,.0f} |\n| ratio (reference time / Dockyard time) | {ref_seconds / new['seconds']:.2f} | |")
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
