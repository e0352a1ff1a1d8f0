"""A real S3 server for tests: Ceph's RADOS Gateway, started by scripts/ceph-rgw.

- `ceph_rgw` (session): starts a throw-away single-node Ceph cluster with radosgw on a free loopback
  port the first time a test asks for it (~13 s with memstore), and kills it when the session ends.
  Tests that use it are marked `s3`, so `-m "not s3"` leaves the gateway unstarted.
- `s3_bucket` (function): a fresh, uniquely named bucket on it; emptied (objects and unfinished
  multipart uploads) and deleted afterwards.

`DOCKYARD_TEST_S3_ENDPOINT` (with `DOCKYARD_TEST_S3_ACCESS_KEY` / `DOCKYARD_TEST_S3_SECRET_KEY`) points
the fixtures at an S3 server that already runs instead, e.g. one left up with `scripts/ceph-rgw` while
iterating. `DOCKYARD_TEST_CEPH_STORE=bluestore` runs the OSD on bluestore (~17 s to start) instead of
memstore.

radosgw 16.2's quirks: path-style addressing only; presigned URLs are bound to the host they were signed
for; the first bucket creation after a start takes ~2 s; CompleteMultipartUpload answers an empty ETag.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CEPH_RGW = ROOT / "scripts" / "ceph-rgw"
START_TIMEOUT = 300.0  # seconds: apt-get install (~30 s) when the packages are missing, then the start


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client the way radosgw wants it: path-style, SigV4.

        Checksums only when an operation requires them: botocore >= 1.36 otherwise sends CRC32
        trailers in aws-chunked bodies, which radosgw 16.2 does not understand.
        """
        import boto3  # here, not at the top: conftest imports this module for every test run
        from botocore.config import Config

        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                     retries={"max_attempts": 3, "mode": "standard"},
                     connect_timeout=5, read_timeout=60,
                     request_checksum_calculation="when_required",
                     response_checksum_validation="when_required", **config)
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=cfg)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_triple() -> int:
    """A loopback port P with P+1 and P+2 free too (scripts/ceph-rgw puts the monitor there)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 2 <= 65535 and _port_free(port + 1) and _port_free(port + 2):
            return port
    raise RuntimeError("no three consecutive free loopback ports")


def process_running(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for its (new) parent to reap it does not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class CephRgw:
    """One scripts/ceph-rgw cluster. Started in its own session, so its process group holds the
    script and every daemon it started and one killpg stops all of them; the script's watchdog
    (CEPH_RGW_OWNER_PID) covers a test run that dies by SIGKILL, where neither teardown nor atexit runs."""

    def __init__(self, store: str = "memstore") -> None:
        self.store = store
        self.datadir = Path(tempfile.mkdtemp(prefix="dockyard-rgw-"))
        self.pgid: int | None = None
        self.pids: list[int] = []
        self.startup_seconds = 0.0

    def start(self) -> S3Server:
        port = free_port_triple()
        env = {**os.environ, "CEPH_RGW_OWNER_PID": str(os.getpid()), "CEPH_RGW_OWNER_CLEANUP": "1"}
        began = time.monotonic()
        proc = subprocess.Popen([str(CEPH_RGW), str(port), str(self.datadir), self.store], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.pgid = proc.pid
        atexit.register(self.stop)  # an interrupted run (KeyboardInterrupt, pytest.exit) cleans up too
        try:
            out, err = proc.communicate(timeout=START_TIMEOUT)
        except BaseException:  # timeout or Ctrl-C while starting: nothing may be left running
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if proc.returncode != 0 or "ENDPOINT" not in fields:
            self.stop()
            raise RuntimeError(f"scripts/ceph-rgw failed ({proc.returncode}): {err[-3000:]}")
        self.pids = [int(p) for p in fields["PIDS"].split()]
        return S3Server(fields["ENDPOINT"], fields["ACCESS"], fields["SECRET"])

    def stop(self) -> None:
        """SIGKILL the whole group and wait (bounded) until the daemons are gone; idempotent."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pgid = None
        for pid in self.pids:  # the daemons, should one have left the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(process_running(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pids = []
        shutil.rmtree(self.datadir, ignore_errors=True)
        atexit.unregister(self.stop)


@pytest.fixture(scope="session")
def ceph_rgw() -> Iterator[S3Server]:
    endpoint = os.environ.get("DOCKYARD_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Server(endpoint, os.environ.get("DOCKYARD_TEST_S3_ACCESS_KEY", "testaccess"),
                       os.environ.get("DOCKYARD_TEST_S3_SECRET_KEY", "testsecret1234567890"))
        return
    if not shutil.which("radosgw") and not (shutil.which("apt-get") and os.geteuid() == 0):
        if os.environ.get("CI"):
            pytest.fail("Ceph's radosgw is not installed and cannot be: run the tests through scripts/test")
        pytest.skip("Ceph's radosgw is not installed (scripts/test installs it)")
    cluster = CephRgw(os.environ.get("DOCKYARD_TEST_CEPH_STORE", "memstore"))
    server = cluster.start()
    try:
        yield server
    finally:
        cluster.stop()


def empty_and_delete(client: Any, bucket: str) -> None:
    """Abort unfinished multipart uploads, delete every object, then the bucket (radosgw refuses
    to delete a bucket that still has either)."""
    for page in _pages(client, "list_multipart_uploads", Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in _pages(client, "list_objects_v2", Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:  # a page holds at most 1000 keys, the limit of one DeleteObjects
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    # Bounded: 1000 pages of 1000 keys is far beyond anything a test writes.
    yield from client.get_paginator(operation).paginate(**kwargs, PaginationConfig={"MaxItems": 1_000_000})


@pytest.fixture
def s3_bucket(ceph_rgw: S3Server) -> Iterator[tuple[S3Server, str]]:
    client = ceph_rgw.client()
    name = f"t-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    try:
        yield ceph_rgw, name
    finally:
        empty_and_delete(client, name)
