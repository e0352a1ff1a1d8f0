"""Several `dockyard serve` nodes of one registry, for the many-node tests (tests/e2e/test_cluster.py).

`cluster(root, s3)` starts N nodes that share what a real deployment shares and nothing else: one
fresh PostgreSQL database (on DOCKYARD_TEST_POSTGRES), one fresh bucket on the Ceph RGW of
tests/s3_support.py (path-style, which `dockyard serve` creates), one token signing key file
(auth.signing_key_file, written by the first node) and one config file; each node has a data
directory of its own. Token auth only (`auth.basic_on_registry: false`), so every registry request
carries a token that some node signed. `balancer(cluster.addresses)` (tests/e2e/balancer.py) puts
nginx round-robin in front of them; the nodes trust it for X-Forwarded-*.

A `Node` is a ServerProcess that can be stopped (SIGTERM), killed (SIGKILL) and started again on
the same port and data directory. When the block ends every node is stopped, every blob object in
the bucket must hash to its key (`bucket_problems`), and the bucket is emptied and deleted.
"""

from __future__ import annotations

import hashlib
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import PG_URL, ServerProcess, _pg_database, free_port
from tests.s3_support import S3Server, empty_and_delete

PART_SIZE_MIB = 5  # S3's minimum part size: chunks under and over it both matter


def require_postgres() -> None:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("DOCKYARD_TEST_POSTGRES is not set: run the tests through scripts/test")
        pytest.skip("PostgreSQL not configured (run through scripts/test)")


class Node(ServerProcess):
    """One `dockyard serve` of the cluster."""

    def __init__(self, name: str, data: Path, password: str, config: Path) -> None:
        super().__init__(data, free_port(), password, env={"DOCKYARD_CONFIG": str(config)})
        self.name = name

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Stop (SIGTERM: a clean shutdown; SIGKILL: a crash) and start again, same port and data."""
        self.stop(sig)
        self.start()

    def worker_pids(self) -> set[int]:
        """The processes of this node (supervisor and workers share one process group)."""
        assert self.proc is not None
        group, pids = self.proc.pid, set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.getpgid(int(pid)) == group:
                    pids.add(int(pid))
            except OSError:
                continue
        return pids


@dataclass
class Cluster:
    nodes: list[Node]
    db_url: str
    s3: S3Server
    bucket: str
    key_file: Path
    user: str
    password: str

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def s3_client(self) -> Any:
        return self.s3.client()

    def blob_keys(self) -> list[str]:
        s3 = self.s3_client()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="blobs/")
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def node_config(db_url: str, s3: S3Server, bucket: str, key_file: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """The one config file every node reads; `sections` are merged over it (e.g. gc={...})."""
    config: dict[str, Any] = {
        "database": {"url": db_url},
        "storage": {"driver": "s3", "s3": {
            "endpoint": s3.endpoint, "bucket": bucket, "region": s3.region, "access_key_id": s3.access_key,
            "secret_access_key": s3.secret_key, "path_style": True, "part_size_mib": PART_SIZE_MIB}},
        "auth": {"signing_key_file": str(key_file), "basic_on_registry": False},
        "server": {"trusted_proxies": ["127.0.0.1"]},
        "gc": {"interval_seconds": 0},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def bucket_problems(cluster: Cluster) -> list[str]:
    """Objects under blobs/ whose content does not hash to their key (empty: the bucket is sound)."""
    s3, problems = cluster.s3_client(), []
    for key in cluster.blob_keys():
        parts = key.split("/")
        if len(parts) != 4 or parts[1] not in ("sha256", "sha512") or not parts[3].startswith(parts[2]):
            problems.append(f"unexpected key {key}")
            continue
        h = hashlib.new(parts[1])
        body = s3.get_object(Bucket=cluster.bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            h.update(chunk)
        if h.hexdigest() != parts[3]:
            problems.append(f"{key}: content hashes to {parts[1]}:{h.hexdigest()}")
    return problems


@contextmanager
def cluster(root: Path, s3: S3Server, nodes: int = 2, db_url: str | None = None,
            **sections: dict[str, Any]) -> Iterator[Cluster]:
    """`nodes` nodes on a fresh database (or `db_url`, already created) and a bucket that does not
    exist yet; started one after the other (the first creates the bucket, the key and the admin)."""
    require_postgres()
    db_url = db_url or _pg_database()
    bucket = f"c-{uuid.uuid4().hex[:20]}"
    key_file = root / "shared" / "token-signing.pem"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    config = root / "dockyard.yaml"
    config.write_text(yaml.safe_dump(node_config(db_url, s3, bucket, key_file, **sections)))
    password = "e2e-" + uuid.uuid4().hex[:12]
    group = Cluster([Node(chr(ord("a") + i), root / f"node-{i}" / "data", password, config) for i in range(nodes)],
                    db_url, s3, bucket, key_file, "admin", password)
    problems: list[str] = []
    try:
        for node in group.nodes:
            node.start()
        yield group
    finally:
        for node in group.nodes:
            node.stop()
        if _bucket_exists(s3, bucket):  # not when the first node failed to start
            try:
                problems = bucket_problems(group)
            finally:
                empty_and_delete(s3.client(), bucket)
    assert problems == []


def _bucket_exists(s3: S3Server, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.client().head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


def token(base_url: str, user: str, password: str, *scopes: str, service: str = "dockyard") -> str:
    """A registry token from the node (or balancer) at `base_url`."""
    r = httpx.get(f"{base_url}/auth/token", params=[("service", service), *(("scope", s) for s in scopes)],
                  auth=(user, password), timeout=30)
    assert r.status_code == 200, (base_url, r.status_code, r.text)
    return str(r.json()["token"])


# -- the Distribution API with a token ---------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def api(base_url: str, bearer: str, timeout: float = 60.0) -> httpx.Client:
    """httpx against one node (or the balancer), every request with `bearer`."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=timeout)


def path_of(location: str) -> str:
    """A Location header (a path, or a URL naming whichever node answered) as a path, so the next
    request of an upload can go to any node."""
    url = httpx.URL(location)
    return url.raw_path.decode() if url.is_absolute_url else location


def start_upload(c: httpx.Client, repo: str) -> str:
    r = c.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, (str(c.base_url), r.status_code, r.text)
    return path_of(r.headers["location"])


def patch(c: httpx.Client, location: str, start: int, chunk: bytes) -> httpx.Response:
    return c.patch(location, content=chunk, headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + len(chunk) - 1}"})


def close_upload(c: httpx.Client, location: str, digest: str, chunk: bytes = b"") -> httpx.Response:
    sep = "&" if "?" in location else "?"
    return c.put(f"{location}{sep}digest={digest}", content=chunk,
                 headers={"Content-Type": "application/octet-stream"})


def push_monolithic(c: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    return c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data,
                  headers={"Content-Type": "application/octet-stream"})


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    import json

    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(x), "size": len(x)} for x in layers],
    }, sort_keys=True).encode()


def put_manifest(c: httpx.Client, repo: str, ref: str, body: bytes) -> httpx.Response:
    return c.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": OCI_MANIFEST})


def get_blob(c: httpx.Client, repo: str, digest: str) -> bytes | None:
    """The blob's bytes (following a redirect), or None when the answer is not 200."""
    r = c.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
    return r.content if r.status_code == 200 else None


# -- pushes whose acknowledgements are recorded ------------------------------------------------------
@dataclass
class Acked:
    """A push the registry acknowledged: the tag's manifest answered 201, so the manifest and every
    blob it names (each acknowledged with a 201 before it) must be readable afterwards."""

    repo: str
    tag: str
    manifest: bytes
    blobs: dict[str, tuple[int, int]]  # digest -> (seed, size): the bytes are regenerated to compare


def blob_bytes(seed: int, size: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


class Pusher:
    """Pushes images through `base_url` in a thread until `stop()` (or `max_pushes`, or `max_seconds`),
    recording each acknowledged push (`acked`) and each failed request (`failures`: a node that was
    killed mid-request, or a 502 from the balancer, ends that push). Layers alternate between a
    monolithic upload and a chunked one with a 4 MiB and a smaller PATCH (under and over the 5 MiB part
    size once summed), so round-robin spreads one upload's requests over the nodes."""

    SIZES = (150_000, 4 * 1024 * 1024 + 700_001, 1_300_000)

    def __init__(self, base_url: str, user: str, password: str, repo: str, max_pushes: int = 200,
                 max_seconds: float = 120.0) -> None:
        import threading

        self.base_url, self.user, self.password, self.repo = base_url, user, password, repo
        self.max_pushes, self.max_seconds = max_pushes, max_seconds
        self.acked: list[Acked] = []
        self.failures: list[str] = []
        self.attempts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pusher-{repo}", daemon=True)

    def start(self) -> "Pusher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.max_seconds + 60)
        assert not self._thread.is_alive(), "the pusher did not stop"

    def _run(self) -> None:
        import time

        deadline = time.monotonic() + self.max_seconds
        seed = int.from_bytes(os.urandom(4), "big") << 16
        while not self._stop.is_set() and self.attempts < self.max_pushes and time.monotonic() < deadline:
            self.attempts += 1
            try:
                self._push_one(seed + self.attempts)
            except (httpx.HTTPError, AssertionError) as exc:
                self.failures.append(f"push {self.attempts}: {type(exc).__name__}: {str(exc)[:200]}")

    def _push_one(self, seed: int) -> None:
        scope = f"repository:{self.repo}:pull,push"
        r = httpx.get(f"{self.base_url}/auth/token", params={"service": "dockyard", "scope": scope},
                      auth=(self.user, self.password), timeout=30)
        assert r.status_code == 200, f"token: {r.status_code}"
        size = self.SIZES[seed % len(self.SIZES)]
        layer = blob_bytes(seed, size)
        config = f'{{"architecture":"amd64","os":"linux","seed":{seed}}}'.encode()
        with api(self.base_url, r.json()["token"]) as c:
            answer = push_monolithic(c, self.repo, config)
            assert answer.status_code == 201, f"config: {answer.status_code} {answer.text[:100]}"
            if size > 4 * 1024 * 1024:
                location = start_upload(c, self.repo)
                first = 4 * 1024 * 1024
                for start, chunk in ((0, layer[:first]), (first, layer[first:])):
                    answer = patch(c, location, start, chunk)
                    assert answer.status_code == 202, f"PATCH: {answer.status_code} {answer.text[:100]}"
                    location = path_of(answer.headers["location"])
                answer = close_upload(c, location, sha256(layer))
            else:
                answer = push_monolithic(c, self.repo, layer)
            assert answer.status_code == 201, f"layer: {answer.status_code} {answer.text[:100]}"
            manifest = manifest_for(config, [layer])
            tag = f"p{seed}"
            answer = put_manifest(c, self.repo, tag, manifest)
            assert answer.status_code == 201, f"manifest: {answer.status_code} {answer.text[:100]}"
        # config bytes are rebuilt from the seed too, so both blobs are checked the same way
        self.acked.append(Acked(self.repo, tag, manifest, {sha256(layer): (seed, size)}))

    def check(self, base_url: str) -> list[str]:
        """Every acknowledged push read back through `base_url`, byte for byte: the problems."""
        import json

        problems: list[str] = []
        r = httpx.get(f"{base_url}/auth/token", params={"service": "dockyard", "scope": f"repository:{self.repo}:pull"},
                      auth=(self.user, self.password), timeout=30)
        assert r.status_code == 200, r.text
        with api(base_url, r.json()["token"]) as c:
            for push in self.acked:
                got = c.get(f"/v2/{push.repo}/manifests/{push.tag}", headers={"Accept": OCI_MANIFEST})
                if got.status_code != 200 or got.content != push.manifest:
                    problems.append(f"{push.repo}:{push.tag}: manifest {got.status_code}")
                    continue
                doc = json.loads(push.manifest)
                config = get_blob(c, push.repo, doc["config"]["digest"])
                if config is None or sha256(config) != doc["config"]["digest"]:
                    problems.append(f"{push.repo}:{push.tag}: config blob {doc['config']['digest']}")
                for digest, (seed, size) in push.blobs.items():
                    if get_blob(c, push.repo, digest) != blob_bytes(seed, size):
                        problems.append(f"{push.repo}:{push.tag}: layer {digest} differs or is missing")
        return problems
