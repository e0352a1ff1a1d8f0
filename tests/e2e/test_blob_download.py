"""Blob downloads from a real `dockyard serve` (api/distribution/blobsend.py): whole blobs and
ranges, from the page cache and from the disk, byte for byte.

The body is sent in 1 MiB chunks from one reused buffer, which is only right because granian
copies each chunk before `send` returns: every chunk of the test blob differs, so a server that
kept a reference to the buffer would send later bytes in place of earlier ones."""

from __future__ import annotations

import hashlib
import os
import random

import httpx
import pytest

from dockyard.storage.layout import blob_path
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def _push(server: ServerProcess, client: httpx.Client, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = client.post(f"{server.url}/v2/dl/blob/blobs/uploads/?digest={digest}", content=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def _evict(path: os.PathLike[str]) -> None:
    """Drop the file's pages from the page cache, so the next read must go to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize("cached", [True, False], ids=["page-cache", "disk"])
def test_whole_blobs_and_ranges_byte_for_byte(server: ServerProcess, cached: bool) -> None:
    rng = random.Random(8)
    data = b"".join(bytes([i]) * MiB for i in range(5)) + rng.randbytes(MiB + 3)  # six chunks, the last short
    with httpx.Client(auth=(server.user, server.password), timeout=60) as client:
        digest = _push(server, client, data)
        path = blob_path(server.data / "blobs", digest)
        url = f"{server.url}/v2/dl/blob/blobs/{digest}"
        for headers, status, expected in [
            ({}, 200, data),
            ({"Range": f"bytes={MiB - 5}-{3 * MiB + 6}"}, 206, data[MiB - 5:3 * MiB + 7]),
            ({"Range": "bytes=-7"}, 206, data[-7:]),
            ({"Range": f"bytes={5 * MiB}-"}, 206, data[5 * MiB:]),
        ]:
            if not cached:
                _evict(path)
            r = client.get(url, headers=headers)
            assert r.status_code == status, r.text[:200]
            assert int(r.headers["content-length"]) == len(expected)
            assert hashlib.sha256(r.content).digest() == hashlib.sha256(expected).digest(), headers
        r = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"


def test_a_blob_removed_before_its_download_is_blob_unknown(server: ServerProcess) -> None:
    with httpx.Client(auth=(server.user, server.password), timeout=60) as client:
        digest = _push(server, client, b"soon gone" * 1000)
        blob_path(server.data / "blobs", digest).unlink()  # as if gc had won a race with the GET
        r = client.get(f"{server.url}/v2/dl/blob/blobs/{digest}")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
