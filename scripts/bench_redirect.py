"""Blob pulls through `storage.redirect: true` against a direct boto3 GET of the same object.

    python scripts/bench_redirect.py REGISTRY USER PASS S3_ENDPOINT ACCESS SECRET BUCKET [--size-mib N] [--rounds N]

Pushes one blob of N MiB (random bytes) to REGISTRY, then, alternating, R times each:
  registry  GET /v2/<repo>/blobs/<digest> with a pull token (fetched before the timing), the 307
            followed to the presigned URL, the body read 1 MiB at a time (urllib3, what boto3
            uses underneath);
  boto3     get_object on the blob's key in BUCKET, the body read 1 MiB at a time.
Prints MiB/s of both (median of the rounds) and registry/boto3. Run by scripts/bench when
BENCH_STORAGE=s3 BENCH_REDIRECT=1; stdlib, boto3 and urllib3 only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import statistics
import sys
import time
import urllib.parse

import boto3
import urllib3
from botocore.config import Config

CHUNK = 1 << 20


def token(pm: urllib3.PoolManager, registry: str, user: str, password: str, scope: str) -> str:
    probe = pm.request("GET", f"{registry}/v2/", redirect=False)
    challenge = probe.headers.get("www-authenticate", "")
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": scope})
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    r = pm.request("GET", f"{params['realm']}?{query}", headers={"Authorization": f"Basic {basic}"})
    if r.status != 200:
        sys.exit(f"token: {r.status} {r.data[:200]!r}")
    body = json.loads(r.data)
    return str(body.get("token") or body["access_token"])


def push(pm: urllib3.PoolManager, registry: str, bearer: str, repo: str, data: bytes, digest: str) -> None:
    auth = {"Authorization": f"Bearer {bearer}"}
    r = pm.request("POST", f"{registry}/v2/{repo}/blobs/uploads/?digest={digest}", body=data,
                   headers={**auth, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if r.status != 201:
        sys.exit(f"push: {r.status} {r.data[:300]!r}")


def drain(response: urllib3.BaseHTTPResponse) -> int:
    n = 0
    while chunk := response.read(CHUNK):
        n += len(chunk)
    response.release_conn()
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("registry", "user", "password", "endpoint", "access", "secret", "bucket"):
        ap.add_argument(name)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--prefix", default="")
    a = ap.parse_args()
    pm = urllib3.PoolManager(maxsize=4)
    repo = "bench/redirect"
    data = os.urandom(a.size_mib << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    push(pm, a.registry, token(pm, a.registry, a.user, a.password, f"repository:{repo}:pull,push"), repo, data, digest)
    size = len(data)
    del data
    s3 = boto3.client("s3", endpoint_url=a.endpoint, aws_access_key_id=a.access, aws_secret_access_key=a.secret,
                      config=Config(region_name="us-east-1", s3={"addressing_style": "path"},
                                    request_checksum_calculation="when_required",
                                    response_checksum_validation="when_required"))
    key = f"{a.prefix}blobs/sha256/{digest[7:9]}/{digest[7:]}"
    pull = token(pm, a.registry, a.user, a.password, f"repository:{repo}:pull")

    def via_registry() -> int:
        r = pm.request("GET", f"{a.registry}/v2/{repo}/blobs/{digest}", redirect=False,
                       headers={"Authorization": f"Bearer {pull}"})
        if r.status != 307:
            sys.exit(f"expected a 307 redirect (storage.redirect: true), got {r.status}")
        return drain(pm.request("GET", r.headers["location"], preload_content=False))

    def direct() -> int:
        body = s3.get_object(Bucket=a.bucket, Key=key)["Body"]
        n = 0
        for chunk in body.iter_chunks(CHUNK):
            n += len(chunk)
        body.close()
        return n

    times: dict[str, list[float]] = {"registry": [], "boto3": []}
    for fn in (via_registry, direct):  # warm-up: connections, page cache of the OSD
        assert fn() == size
    for _ in range(a.rounds):
        for name, fn in (("registry", via_registry), ("boto3", direct)):
            start = time.perf_counter()
            got = fn()
            times[name].append(time.perf_counter() - start)
            assert got == size, (name, got, size)
    mib = size / (1 << 20)
    rate = {name: mib / statistics.median(t) for name, t in times.items()}
    print(f"| blob | rounds | redirect pull MiB/s | boto3 GET MiB/s | ratio |")
    print(f"|---|---|---|---|---|")
    print(f"| {a.size_mib} MiB | {a.rounds} | {rate['registry']:.0f} | {rate['boto3']:.0f} | "
          f"{rate['registry'] / rate['boto3']:.2f} |")


if __name__ == "__main__":
    main()
