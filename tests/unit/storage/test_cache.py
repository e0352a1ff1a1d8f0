"""The node's copy of hot blobs in front of the S3 store (storage/cache.py), on a real Ceph RGW."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
import uuid
from pathlib import Path

import pytest

from dockyard.core.errors import DigestInvalid
from dockyard.storage.cache import STALE_TEMP, BlobCache, CachedStore
from dockyard.storage.fsread import FsReader
from dockyard.storage.s3 import S3BlobStore, S3Reader
from tests.s3_support import S3Server

pytestmark = pytest.mark.s3
MiB = 1 << 20


@pytest.fixture
def shared(s3_bucket: tuple[S3Server, str]) -> S3BlobStore:
    server, bucket = s3_bucket
    return S3BlobStore(bucket=bucket, endpoint=server.endpoint, region=server.region, access_key_id=server.access_key,
                       secret_access_key=server.secret_key, path_style=True, part_size=5 * MiB)


def put(store: S3BlobStore, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    writer = store.new_blob("sha256", digest, len(data))
    writer.write([data])
    staged = writer.finish()
    staged.seal()
    staged.place(digest)
    return digest


def read(store: CachedStore, digest: str, offset: int, length: int, stop_after: int | None = None) -> tuple[bytes, object]:
    """Read a range as a response body does (reused buffers); `stop_after` chunks: the client goes away."""
    async def go() -> tuple[bytes, object]:
        reader = await asyncio.get_running_loop().run_in_executor(None, store.open_range, digest, offset, length)
        kept = []
        try:
            async for chunk in reader.chunks(True):
                kept.append(bytes(chunk))
                if stop_after is not None and len(kept) >= stop_after:
                    break
        finally:
            reader.close()
        return b"".join(kept), reader
    return asyncio.run(go())


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def temps(cache: BlobCache) -> list[str]:
    return os.listdir(cache.tmp)


def test_whole_read_fills_then_hits_serve_every_range(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30))
    data = blob(9 * MiB + 123)
    digest = put(shared, data)
    body, reader = read(store, digest, 0, len(data))
    assert body == data and isinstance(reader, S3Reader)
    store.cache.settle()
    assert store.cache.path(digest).read_bytes() == data and temps(store.cache) == []
    assert store.cache.used == len(data)
    for offset, length in [(0, len(data)), (5, 1), (4 * MiB - 1, 3 * MiB), (len(data) - 7, 7)]:
        body, reader = read(store, digest, offset, length)
        assert isinstance(reader, FsReader) and body == data[offset:offset + length], (offset, length)


def test_ranges_and_unfinished_reads_leave_no_copy(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30))
    data = blob(12 * MiB, seed=1)
    digest = put(shared, data)
    assert read(store, digest, 1, len(data) - 1)[0] == data[1:]  # a range: no copy
    assert read(store, digest, 0, 10)[0] == data[:10]  # the start only: no copy
    assert read(store, digest, 0, len(data), stop_after=1)[0] == data[:4 * MiB]  # the client went away
    store.cache.settle()
    assert not store.cache.path(digest).exists() and temps(store.cache) == [] and store.cache.used == 0


def test_deleted_blobs_lose_their_copy_and_missing_blobs_stay_missing(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30))
    data = blob(MiB, seed=2)
    digest = put(shared, data)
    read(store, digest, 0, len(data))
    store.cache.settle()
    store.delete_many([digest])
    assert not store.cache.path(digest).exists() and store.cache.used == 0
    with pytest.raises(FileNotFoundError):
        store.open_range(digest, 0, len(data))


def test_a_bad_copy_is_dropped_and_the_store_answers(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30))
    data = blob(2 * MiB, seed=3)
    digest = put(shared, data)
    read(store, digest, 0, len(data))
    store.cache.settle()
    path = store.cache.path(digest)
    os.truncate(path, MiB)  # e.g. a disk that lost the end of the file
    body, reader = read(store, digest, 0, len(data))
    assert body == data and isinstance(reader, S3Reader)


def test_least_recently_used_copies_go_first(shared: S3BlobStore, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 8 * MiB)  # copies of at most 2 MiB (a quarter)
    store = CachedStore(shared, cache)
    blobs = [blob(2 * MiB, seed=10 + i) for i in range(5)]
    digests = [put(shared, b) for b in blobs]
    for i, (d, b) in enumerate(zip(digests, blobs)):
        read(store, d, 0, len(b))
        cache.settle()
        os.utime(cache.path(d), (1000 + i, 1000 + i))  # an order that does not hang on the clock
        if i == 2:
            os.utime(cache.path(digests[0]), (2000, 2000))  # the first one is hit again
    # 10 MiB went in with room for 8: down to 90 %, oldest first (the second, then the third)
    assert [cache.path(d).exists() for d in digests] == [True, False, False, True, True]
    assert cache.used == 6 * MiB
    big = blob(2 * MiB + 1, seed=20)
    read(store, put(shared, big), 0, len(big))  # over a quarter of the cache: never copied
    cache.settle()
    assert cache.used == 6 * MiB and temps(cache) == []


def test_no_copy_when_the_disk_is_nearly_full(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=1.0))
    data = blob(MiB, seed=4)
    digest = put(shared, data)
    assert read(store, digest, 0, len(data))[0] == data
    store.cache.settle()
    assert not store.cache.path(digest).exists() and temps(store.cache) == []


def test_start_up_counts_copies_and_clears_stale_temporary_files(shared: S3BlobStore, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    data = blob(MiB, seed=5)
    digest = put(shared, data)
    read(CachedStore(shared, cache), digest, 0, len(data))
    cache.settle()
    stale, fresh = cache.tmp / uuid.uuid4().hex, cache.tmp / uuid.uuid4().hex
    stale.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)  # another worker's fill in progress
    old = time.time() - STALE_TEMP - 5
    os.utime(stale, (old, old))
    again = BlobCache(tmp_path / "cache", 1 << 30)
    assert again.used == len(data) and sorted(temps(again)) == [fresh.name]


def test_digests_cannot_name_paths_outside_the_cache(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    for bad in ["sha256:../../etc/passwd", "../x", "sha256:" + "a" * 63 + "/"]:
        with pytest.raises(DigestInvalid):
            cache.path(bad)
