"""The `BlobStore` contract (storage/base.py), one suite run over every backend: `fs` on a temporary
directory, `s3` on a real Ceph RADOS Gateway (tests/s3_support.py; marked `s3`) and `s3+cache`, the
same with each node's local copy of hot blobs in front (storage/cache.py).

Only the protocol is used, the way the registry drives it (registry/uploads.py): monolithic
uploads (new_blob -> write -> hexdigest -> finish -> seal -> place), upload sessions whose state
goes through the database row between chunks (so here through JSON) and whose chunks may arrive
at any node (so here at a new store instance), all-or-nothing chunks, deletion, listing for GC and
the purge of staged data. Two chunks of one session at the same offset at once are not the store's
to sort out: the registry claims the session in the database before a chunk writes anything
(tests/integration/test_upload_claims.py). Staging a session's bytes (`session_stage`) ends it, as in the registry
where only the commit does it: a session is staged only once it takes no more chunks.

The S3 store gets a 5 MiB part size (S3's minimum), so parts, buffering of small chunks and
multipart completion are all exercised with a few MiB of data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.storage.base import BlobStore, SessionState, SessionWriter, Staged
from tests.s3_support import S3Server, empty_and_delete

KiB, MiB = 1 << 10, 1 << 20
PART = 5 * MiB  # the S3 store's part size here


@dataclass(frozen=True)
class Backend:
    kind: str
    make: Callable[[], BlobStore]  # a new store instance on the same storage: another node


@pytest.fixture(scope="module")
def contract_bucket(ceph_rgw: S3Server) -> Iterator[tuple[S3Server, str]]:
    """One bucket for the module, each test under its own key prefix: creating and deleting a
    bucket per test (tests/s3_support.py's `s3_bucket`) took as long as the tests themselves."""
    client = ceph_rgw.client()
    name = f"c-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    try:
        yield ceph_rgw, name
    finally:
        empty_and_delete(client, name)


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3), pytest.param("s3+cache", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "fs":
        from dockyard.storage.fs import FsBlobStore

        return Backend("fs", lambda: FsBlobStore(tmp_path / "blobs", tmp_path / "uploads"))
    from dockyard.storage.s3 import S3BlobStore

    server, bucket = request.getfixturevalue("contract_bucket")
    prefix = f"t{uuid.uuid4().hex[:16]}/"  # this test's part of the bucket: the store sees nothing else

    def make() -> BlobStore:
        return S3BlobStore(
            bucket=bucket, endpoint=server.endpoint, region=server.region, access_key_id=server.access_key,
            secret_access_key=server.secret_key, path_style=True, prefix=prefix, part_size=PART, presign_ttl=300)

    if request.param == "s3":
        return Backend("s3", make)
    from dockyard.storage.cache import BlobCache, CachedStore

    def cached() -> BlobStore:  # each node with a local copy of hot blobs of its own
        return CachedStore(make(), BlobCache(tmp_path / f"cache-{uuid.uuid4().hex[:8]}", 1 << 30, min_free=0.0))

    return Backend("s3+cache", cached)


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.make()


# -- helpers ----------------------------------------------------------------------------------------
def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def far_future() -> float:
    return time.time() + 365 * 86400


def feed(writer: Any, data: bytes, batch: int = MiB, piece: int = 64 * KiB) -> None:
    """Write `data` as the ingest pump does: batches (one write call each) of body-sized pieces."""
    for start in range(0, len(data), batch):
        chunk = data[start:start + batch]
        writer.write([chunk[i:i + piece] for i in range(0, len(chunk), piece)])


def staged_blob(store: BlobStore, data: bytes, algorithm: str = "sha256", announce: bool = True) -> tuple[str, Staged]:
    digest = digest_of(data, algorithm)
    writer = store.new_blob(algorithm, digest if announce else None, len(data) if announce else None)
    feed(writer, data)
    assert writer.hexdigest() == digest.partition(":")[2]
    staged = writer.finish()
    assert staged.size == len(data)
    staged.seal()
    return digest, staged


def put(store: BlobStore, data: bytes, algorithm: str = "sha256") -> str:
    digest, staged = staged_blob(store, data, algorithm)
    staged.place(digest)
    return digest


def read(store: BlobStore, digest: str, offset: int, length: int, reuse_buffer: bool) -> bytes:
    """Open and read a range the way a response body does. With `reuse_buffer` each chunk is copied
    before the next is asked for; without, the chunks are kept as given and joined at the end (so a
    buffer reused against the contract shows as wrong bytes)."""
    reader = store.open_range(digest, offset, length)
    assert reader.length == length

    async def collect() -> bytes:
        kept: list[bytes | bytearray] = []
        async for chunk in reader.chunks(reuse_buffer):
            kept.append(bytes(chunk) if reuse_buffer else chunk)
        return b"".join(kept)

    try:
        return asyncio.run(collect())
    finally:
        reader.close()


def stored(store: BlobStore) -> set[str]:
    return {digest for digest, _ in store.iter_blobs()}


def roundtrip(state: SessionState) -> SessionState:
    """The state as it comes back from the session's database row."""
    return json.loads(json.dumps(state))  # type: ignore[no-any-return]


def append(store: BlobStore, upload_id: str, state: SessionState, offset: int, data: bytes,
           hasher: Any | None = None, batch: int = MiB) -> SessionState:
    """One chunk, recorded: append, write, commit, (the row is updated), superseded."""
    writer = store.session_append(upload_id, roundtrip(state), offset, hasher)
    feed(writer, data, batch)
    new_state = roundtrip(writer.commit())
    writer.superseded()
    return new_state


def chunk_writer(store: BlobStore, upload_id: str, state: SessionState, offset: int, data: bytes) -> SessionWriter:
    writer = store.session_append(upload_id, roundtrip(state), offset, None)
    feed(writer, data)
    return writer


def session_with(store: BlobStore, data: bytes, pieces: int = 1) -> tuple[str, SessionState]:
    upload_id = uuid.uuid4().hex
    state = roundtrip(store.session_start(upload_id))
    step = max(1, -(-len(data) // pieces))
    for start in range(0, len(data), step):
        state = append(store, upload_id, state, start, data[start:start + step])
    return upload_id, state


def assert_session_holds(store: BlobStore, upload_id: str, state: SessionState, data: bytes) -> None:
    staged = store.session_stage(upload_id, roundtrip(state), len(data))
    assert staged.size == len(data)
    assert staged.digest("sha256") == hashlib.sha256(data).hexdigest()


def assert_nothing_staged(store: BlobStore) -> None:
    """No staged data of any upload is left (the purge, told nothing is live, finds nothing)."""
    assert store.session_orphans(set(), far_future()) == 0


# -- reading ----------------------------------------------------------------------------------------
def test_stat_and_read_small(store: BlobStore) -> None:
    data = data_of(3000)
    digest = put(store, data)
    assert store.stat(digest) == 3000
    assert store.stat(digest_of(b"never stored")) is None
    assert store.read_small(digest, 100) == data[:100]
    assert store.read_small(digest, 3000) == data
    assert store.read_small(digest, 10_000) == data
    with pytest.raises(FileNotFoundError):
        store.read_small(digest_of(b"never stored"), 100)


@pytest.mark.parametrize("reuse_buffer", [False, True])
def test_open_range(store: BlobStore, reuse_buffer: bool) -> None:
    size = 3 * MiB + 123  # several read chunks, an odd tail
    data = data_of(size, seed=1)
    digest = put(store, data)
    ranges = [(0, size), (MiB - 7, MiB + 4000), (size - 1, 1), (0, 1), (12345, 0), (size, 0)]
    for offset, length in ranges:
        assert read(store, digest, offset, length, reuse_buffer) == data[offset:offset + length], (offset, length)


def test_open_range_of_missing_blob(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.open_range(digest_of(b"never stored"), 0, 10)
    digest = put(store, b"short-lived")
    store.delete_many([digest])
    with pytest.raises(FileNotFoundError):
        store.open_range(digest, 0, 11)


def test_a_reader_closed_early(store: BlobStore) -> None:
    """A client that goes away mid-body: the reader is dropped after one chunk; close is idempotent,
    and the blob reads whole afterwards."""
    data = data_of(3 * MiB, seed=2)
    digest = put(store, data)
    reader = store.open_range(digest, 0, len(data))

    async def first() -> bytes:
        chunks = reader.chunks(False)
        chunk = bytes(await chunks.__anext__())
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        return chunk

    head = asyncio.run(first())
    assert head and data.startswith(head)
    reader.close()
    reader.close()
    assert read(store, digest, 0, len(data), True) == data


def test_redirect_url(backend: Backend, store: BlobStore) -> None:
    data = data_of(1000, seed=3)
    digest = put(store, data)
    url = store.redirect_url(digest)
    if backend.kind == "fs":
        assert url is None
        return
    assert url is not None
    with httpx.Client(trust_env=False, timeout=30) as client:
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == data
        part = client.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert client.get(url.replace(digest.partition(":")[2], "0" * 64)).status_code in (403, 404)


# -- monolithic uploads -----------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "algorithm", "announce"), [
    (0, "sha256", True),
    (1000, "sha256", False),
    (1000, "sha512", True),
    (PART, "sha256", True),  # exactly one part
    (2 * PART + 2 * MiB + 7, "sha256", True),  # three parts, the last a short one
    (2 * PART + 2 * MiB + 7, "sha256", False),
])
def test_monolithic_upload(backend: Backend, store: BlobStore, size: int, algorithm: str, announce: bool) -> None:
    data = data_of(size, seed=size)
    before = stored(store)
    digest, staged = staged_blob(store, data, algorithm, announce)
    assert store.stat(digest) is None  # not visible before it is placed
    staged.place(digest)
    other = backend.make()  # another node sees it
    assert other.stat(digest) == size
    assert other.read_small(digest, 64) == data[:64]
    assert read(other, digest, 0, size, False) == data
    assert stored(other) == before | {digest}
    assert_nothing_staged(store)


@pytest.mark.parametrize("written", [1000, PART + MiB])
def test_abort_leaves_nothing(store: BlobStore, written: int) -> None:
    keep = put(store, b"already here")
    data = data_of(written, seed=4)
    digest = digest_of(data)
    writer = store.new_blob("sha256", digest, written * 2)  # the body ended early
    feed(writer, data)
    writer.abort()
    assert store.stat(digest) is None
    assert stored(store) == {keep}
    assert_nothing_staged(store)


def test_a_wrong_upload_announcing_a_stored_digest_leaves_that_blob_alone(store: BlobStore) -> None:
    """A backend may stage an announced digest at its final name: a client that announces a stored
    blob's digest and sends other bytes must not damage it."""
    data = data_of(PART + 3 * MiB, seed=5)
    digest = put(store, data)
    writer = store.new_blob("sha256", digest, len(data))
    feed(writer, data_of(len(data), seed=6))
    assert writer.hexdigest() != digest.partition(":")[2]  # the caller refuses it...
    writer.abort()  # ...and aborts
    assert store.stat(digest) == len(data)
    assert read(store, digest, 0, len(data), True) == data
    assert_nothing_staged(store)


def test_place_is_idempotent(store: BlobStore) -> None:
    data = data_of(PART + 1000, seed=7)
    digest, staged = staged_blob(store, data)
    staged.place(digest)
    staged.place(digest)  # a retried transaction
    assert read(store, digest, 0, len(data), True) == data
    # The same bytes uploaded again (another push of the same layer) are placed over the stored blob.
    again, staged = staged_blob(store, data)
    staged.place(again)
    assert store.stat(digest) == len(data)
    assert read(store, digest, 0, len(data), False) == data
    assert stored(store) == {digest}
    assert_nothing_staged(store)


def test_discard(store: BlobStore) -> None:
    digest, staged = staged_blob(store, data_of(PART + 10, seed=8))
    staged.discard()
    staged.discard()
    assert store.stat(digest) is None
    assert stored(store) == set()
    assert_nothing_staged(store)


# -- upload sessions --------------------------------------------------------------------------------
def test_a_session_resumed_from_any_node(backend: Backend, store: BlobStore) -> None:
    chunks = [data_of(MiB, seed=i) for i in range(3)] + [data_of(7 * MiB, seed=3), data_of(100, seed=4)]
    whole = b"".join(chunks)
    upload_id = uuid.uuid4().hex
    state = roundtrip(store.session_start(upload_id))
    hasher = hashlib.sha256()
    offset = 0
    for i, chunk in enumerate(chunks):
        node = store if i % 2 == 0 else backend.make()  # every other chunk goes to another node
        state = append(node, upload_id, state, offset, chunk, hasher=hasher if i == 0 else None)
        offset += len(chunk)
    assert hasher.hexdigest() == hashlib.sha256(chunks[0]).hexdigest()  # the writer fed it
    staged = backend.make().session_stage(upload_id, roundtrip(state), len(whole))
    assert staged.size == len(whole)
    assert staged.digest("sha256") == hashlib.sha256(whole).hexdigest()
    assert staged.digest("sha512") == hashlib.sha512(whole).hexdigest()
    digest = digest_of(whole)
    assert store.stat(digest) is None
    staged.seal()
    staged.place(digest)
    store.session_delete(upload_id, state)  # what the commit does once the blob is recorded
    assert store.stat(digest) == len(whole)
    assert read(backend.make(), digest, 0, len(whole), True) == whole
    assert stored(store) == {digest}
    assert_nothing_staged(store)


def test_an_empty_session(store: BlobStore) -> None:
    """POST, then a closing PUT without a body: the empty blob."""
    upload_id = uuid.uuid4().hex
    state = roundtrip(store.session_start(upload_id))
    staged = store.session_stage(upload_id, state, 0)
    assert staged.digest("sha256") == hashlib.sha256(b"").hexdigest()
    digest = digest_of(b"")
    staged.seal()
    staged.place(digest)
    store.session_delete(upload_id, state)
    assert store.stat(digest) == 0
    assert store.read_small(digest, 10) == b""
    assert read(store, digest, 0, 0, False) == b""
    assert_nothing_staged(store)


def test_the_last_chunk_of_a_closing_put_is_not_recorded(backend: Backend, store: BlobStore) -> None:
    """The closing PUT's chunk is committed, its state used to stage and to clean up, but never
    recorded nor superseded (the commit ends the session)."""
    head, tail = data_of(PART + MiB, seed=9), data_of(2 * MiB, seed=10)
    upload_id, state = session_with(store, head, pieces=3)
    writer = chunk_writer(backend.make(), upload_id, state, len(head), tail)
    last = roundtrip(writer.commit())
    staged = store.session_stage(upload_id, last, len(head) + len(tail))
    digest = digest_of(head + tail)
    assert staged.digest("sha256") == digest.partition(":")[2]
    staged.seal()
    staged.place(digest)
    store.session_delete(upload_id, last)
    assert read(store, digest, 0, len(head) + len(tail), True) == head + tail
    assert stored(store) == {digest}
    assert_nothing_staged(store)


@pytest.mark.parametrize("junk_size", [1000, PART + MiB])
def test_a_chunk_rolled_back_leaves_the_session_as_it_was(backend: Backend, store: BlobStore, junk_size: int) -> None:
    """A client that disconnects mid-chunk: the chunk is rolled back, and a retry from the recorded
    offset with the recorded state goes on as if it had never been sent."""
    head = data_of(PART + MiB + 5, seed=11)  # a part and a tail: the S3 store's multipart upload exists
    upload_id, state = session_with(store, head, pieces=2)
    writer = chunk_writer(store, upload_id, state, len(head), data_of(junk_size, seed=12))
    writer.rollback()
    tail = data_of(PART + 17, seed=13)
    state = append(backend.make(), upload_id, state, len(head), tail)
    assert_session_holds(store, upload_id, state, head + tail)


@pytest.mark.parametrize("junk_size", [1000, PART + MiB])
def test_a_commit_the_database_refuses(backend: Backend, store: BlobStore, junk_size: int) -> None:
    """commit() returned a new state, but recording it failed (another request advanced the row, or
    the database is down): after rollback() the old state still describes the session exactly."""
    head = data_of(PART + 3 * MiB, seed=14)
    upload_id, state = session_with(store, head, pieces=3)
    writer = chunk_writer(store, upload_id, state, len(head), data_of(junk_size, seed=15))
    writer.commit()  # the new state is dropped: the row keeps `state`
    writer.rollback()
    tail = data_of(PART + 3, seed=16)
    state = append(backend.make(), upload_id, state, len(head), tail)
    assert_session_holds(store, upload_id, state, head + tail)


def test_an_empty_chunk_is_not_recorded(store: BlobStore) -> None:
    """A PATCH with an empty body commits, but its (unchanged) offset is not recorded: the session
    goes on from the old state."""
    head = data_of(2 * MiB, seed=17)
    upload_id, state = session_with(store, head)
    writer = store.session_append(upload_id, roundtrip(state), len(head), None)
    writer.commit()
    tail = data_of(PART, seed=18)
    state = append(store, upload_id, state, len(head), tail)
    assert_session_holds(store, upload_id, state, head + tail)


@pytest.mark.parametrize("size", [1000, PART, PART + MiB])
def test_session_delete(backend: Backend, store: BlobStore, size: int) -> None:
    """Deleted (cancelled, purged) is gone, from any node: staging or appending to it again raises
    FileNotFoundError (the registry answers BLOB_UPLOAD_UNKNOWN: the client starts again)."""
    data = data_of(size, seed=22)
    upload_id, state = session_with(store, data, pieces=2)
    store.session_delete(upload_id, state)
    backend.make().session_delete(upload_id, state)  # idempotent, from any node
    with pytest.raises(FileNotFoundError):
        store.session_stage(upload_id, roundtrip(state), len(data))
    with pytest.raises(FileNotFoundError):  # when asked for the writer, or at the latest at commit
        writer = store.session_append(upload_id, roundtrip(state), len(data), None)
        feed(writer, data_of(PART, seed=23))
        writer.commit()
    assert_nothing_staged(store)


def test_session_orphans(backend: Backend, store: BlobStore) -> None:
    blob = put(store, b"a stored blob")
    live_data, dead_data = data_of(PART + MiB, seed=23), data_of(2 * MiB, seed=24)
    live, live_state = session_with(store, live_data, pieces=2)
    dead, dead_state = session_with(store, dead_data)
    fresh = uuid.uuid4().hex
    fresh_state = roundtrip(store.session_start(fresh))  # started, no chunk yet
    cut_short = store.new_blob("sha256", None, None)  # a monolithic upload whose node crashed
    feed(cut_short, data_of(PART + 10, seed=25))

    # Nothing is older than an hour ago: nothing goes. (Staging ends a session: only the dead one is
    # staged to check it is whole.)
    assert store.session_orphans(set(), time.time() - 3600) == 0
    assert_session_holds(store, dead, dead_state, dead_data)

    other = backend.make()
    assert other.session_orphans({live, fresh}, far_future()) >= 2  # the dead session, the cut-short upload
    with pytest.raises(FileNotFoundError):
        other.session_stage(dead, roundtrip(dead_state), len(dead_data))
    more = data_of(100, seed=26)
    live_state = append(store, live, live_state, len(live_data), more)  # it goes on
    fresh_state = append(store, fresh, fresh_state, 0, more)
    assert_session_holds(store, live, live_state, live_data + more)
    assert_session_holds(store, fresh, fresh_state, more)
    assert stored(store) == {blob}
    assert store.session_orphans({live, fresh}, far_future()) == 0


def test_sessions_without_data(store: BlobStore) -> None:
    """Only sessions whose data is gone may be reported (a store that cannot tell reports none): a
    fresh session and one with a buffered chunk have data."""
    fresh = uuid.uuid4().hex
    store.session_start(fresh)
    small, _ = session_with(store, data_of(1000, seed=27))
    big, _ = session_with(store, data_of(PART + 1, seed=28))
    gone, gone_state = session_with(store, data_of(1000, seed=29))
    store.session_delete(gone, gone_state)
    assert store.sessions_without_data({fresh, small, big, gone}) <= {gone}
    assert store.sessions_without_data(set()) == set()


# -- deleting and listing ---------------------------------------------------------------------------
def test_delete_many(backend: Backend, store: BlobStore) -> None:
    digests = [put(store, data_of(100 + i, seed=30 + i)) for i in range(5)]
    missing = [digest_of(str(i).encode()) for i in range(1005)]  # more than one S3 batch (1000)
    doomed = [digests[0], digests[2], digests[4]]
    backend.make().delete_many(d for d in doomed + missing)  # any iterable, missing ones included
    assert stored(store) == {digests[1], digests[3]}
    for d in doomed:
        assert store.stat(d) is None
    assert read(store, digests[3], 0, 103, True) == data_of(103, seed=33)
    store.delete_many([])
    store.delete_many(doomed)  # again: nothing left to delete, no error
    assert stored(store) == {digests[1], digests[3]}


def test_iter_blobs_lists_exactly_the_stored_blobs(store: BlobStore) -> None:
    began = time.time()
    assert stored(store) == set()
    expected = {put(store, data_of(10 + i, seed=40 + i)) for i in range(3)}
    expected.add(put(store, data_of(10, seed=50), "sha512"))
    expected.add(put(store, b""))
    session_with(store, data_of(1000, seed=51))  # staged, not stored
    writer = store.new_blob("sha256", None, None)  # being written
    feed(writer, data_of(1000, seed=52))
    listing = list(store.iter_blobs())
    assert sorted(d for d, _ in listing) == sorted(expected)  # each once
    for _, mtime in listing:
        assert began - 300 <= mtime <= time.time() + 300
    writer.abort()


# -- concurrency ------------------------------------------------------------------------------------
def test_two_nodes_placing_the_same_digest_at_once(backend: Backend) -> None:
    """The same layer pushed through two nodes at once: both placements succeed, the blob is whole."""
    for round_, ways in enumerate([(False, False), (False, True)]):  # monolithic twice; and with a session
        data = data_of(PART + MiB + round_, seed=60 + round_)
        digest = digest_of(data)
        barrier = threading.Barrier(2, timeout=60)
        errors: list[BaseException] = []

        def push(via_session: bool) -> None:
            node = backend.make()
            try:
                if via_session:
                    upload_id, state = session_with(node, data, pieces=2)
                    staged = node.session_stage(upload_id, state, len(data))
                    staged.seal()
                else:
                    upload_id, state = "", None
                    _, staged = staged_blob(node, data)
                barrier.wait()
                staged.place(digest)
                if via_session:
                    node.session_delete(upload_id, state)
            except BaseException as exc:  # reported below, from the test's thread
                barrier.abort()
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(via,)) for via in ways]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        store = backend.make()
        assert store.stat(digest) == len(data)
        assert read(store, digest, 0, len(data), True) == data
        assert_nothing_staged(store)
