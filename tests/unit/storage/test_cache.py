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


def put(store: S3BlobStore | CachedStore, data: bytes) -> str:
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
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0))
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
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0))
    data = blob(12 * MiB, seed=1)
    digest = put(shared, data)
    assert read(store, digest, 1, len(data) - 1)[0] == data[1:]  # a range: no copy
    assert read(store, digest, 0, 10)[0] == data[:10]  # the start only: no copy
    assert read(store, digest, 0, len(data), stop_after=1)[0] == data[:4 * MiB]  # the client went away
    store.cache.settle()
    assert not store.cache.path(digest).exists() and temps(store.cache) == [] and store.cache.used == 0


def test_deleted_blobs_lose_their_copy_and_missing_blobs_stay_missing(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0))
    data = blob(MiB, seed=2)
    digest = put(shared, data)
    read(store, digest, 0, len(data))
    store.cache.settle()
    store.delete_many([digest])
    assert not store.cache.path(digest).exists() and store.cache.used == 0
    with pytest.raises(FileNotFoundError):
        store.open_range(digest, 0, len(data))


def test_a_bad_copy_is_dropped_and_the_store_answers(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0))
    data = blob(2 * MiB, seed=3)
    digest = put(shared, data)
    read(store, digest, 0, len(data))
    store.cache.settle()
    path = store.cache.path(digest)
    os.truncate(path, MiB)  # e.g. a disk that lost the end of the file
    body, reader = read(store, digest, 0, len(data))
    assert body == data and isinstance(reader, S3Reader)


def test_least_recently_used_copies_go_first(shared: S3BlobStore, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 8 * MiB, min_free=0.0)  # copies of at most 2 MiB (a quarter)
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
    cache = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    data = blob(MiB, seed=5)
    digest = put(shared, data)
    read(CachedStore(shared, cache), digest, 0, len(data))
    cache.settle()
    stale, fresh = cache.tmp / uuid.uuid4().hex, cache.tmp / uuid.uuid4().hex
    stale.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)  # another worker's fill in progress
    old = time.time() - STALE_TEMP - 5
    os.utime(stale, (old, old))
    again = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    assert again.used == len(data) and sorted(temps(again)) == [fresh.name]


def test_digests_cannot_name_paths_outside_the_cache(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    for bad in ["sha256:../../etc/passwd", "../x", "sha256:" + "a" * 63 + "/"]:
        with pytest.raises(DigestInvalid):
            cache.path(bad)


def test_concurrent_reads_of_one_blob_make_one_copy(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0))
    data = blob(6 * MiB, seed=6)
    digest = put(shared, data)
    first, second = store.open_range(digest, 0, len(data)), store.open_range(digest, 0, len(data))
    assert isinstance(first, S3Reader) and isinstance(second, S3Reader)
    assert first.sink is not None and second.sink is None, "the second GET does not copy it again"

    async def drain(reader: S3Reader) -> bytes:
        try:
            return b"".join([bytes(c) async for c in reader.chunks(True)])
        finally:
            reader.close()

    assert asyncio.run(drain(second)) == data and asyncio.run(drain(first)) == data
    store.cache.settle()
    assert store.cache.path(digest).read_bytes() == data and temps(store.cache) == []
    # a copy that failed lets the next GET try again
    other = blob(9 * MiB, seed=7)
    d2 = put(shared, other)
    read(store, d2, 0, len(other), stop_after=1)  # the client went away: no copy
    reader = store.open_range(d2, 0, len(other))
    assert isinstance(reader, S3Reader) and reader.sink is not None
    reader.close()


def test_a_monolithic_push_through_the_node_leaves_a_copy(shared: S3BlobStore, tmp_path: Path) -> None:
    store = CachedStore(shared, BlobCache(tmp_path / "cache", 64 * MiB, min_free=0.0))
    data = blob(7 * MiB, seed=8)
    digest = put(store, data)
    assert store.cache.path(digest).read_bytes() == data and temps(store.cache) == []
    body, reader = read(store, digest, 0, len(data))
    assert body == data and isinstance(reader, FsReader), "the first pull is served from the copy"
    # a push whose digest did not check out is discarded: no copy
    writer = store.new_blob("sha256", None, None)
    writer.write([b"not what was announced"])
    staged = writer.finish()
    staged.discard()
    assert temps(store.cache) == []
    # larger than a quarter of the cache: written to the store, not copied
    big = blob(16 * MiB + 1, seed=9)
    writer = store.new_blob("sha256", None, None)
    for start in range(0, len(big), MiB):
        writer.write([big[start:start + MiB]])
    staged = writer.finish()
    d_big = f"sha256:{writer.hexdigest()}"
    staged.place(d_big)
    assert not store.cache.path(d_big).exists() and temps(store.cache) == []
    assert shared.read_small(d_big, 10) == big[:10]


def test_copies_are_dropped_after_the_machine_went_down_while_copying(shared: S3BlobStore, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    data = blob(MiB, seed=10)
    digest = put(CachedStore(shared, cache), data)
    assert cache.path(digest).exists()
    # this process was killed (its marker stays, same boot): the page cache kept its copies
    again = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    assert again.path(digest).exists() and again.used == len(data)
    # a marker from an earlier boot: copies may not have reached the disk
    (cache.run / "12345-deadbeef").write_text("another-boot-id")
    after_crash = BlobCache(tmp_path / "cache", 1 << 30, min_free=0.0)
    assert not after_crash.path(digest).exists() and after_crash.used == 0
    assert sorted(p.name for p in after_crash.run.iterdir()) == sorted([cache.marker.name, again.marker.name,
                                                                       after_crash.marker.name])
    after_crash.close()
    assert not after_crash.marker.exists()
