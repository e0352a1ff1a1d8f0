"""Two processes (or nodes) writing to one upload session: a chunk claims the session in the
database before it writes anything, so a second request at the same offset is refused (416)
instead of writing staged data the winner's recorded state points at (S3 part numbers, the bytes
of an fs staging file past the offset). A claim left by a crashed request expires; a long chunk
renews its own."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.errors import RangeInvalid
from dockyard.meta.content import ContentStore
from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from dockyard.meta.uploads import UploadStore
from dockyard.registry import uploads as uploads_module
from dockyard.registry.uploads import UploadService
from dockyard.storage.base import BlobStore

MiB = 1 << 20
PART = 5 * MiB


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of store instances sharing one storage (two nodes' views of it)."""
    if request.param == "fs":
        from dockyard.storage.fs import FsBlobStore

        yield lambda: FsBlobStore(tmp_path / "blobs", tmp_path / "uploads", fsync=False)
        return
    from dockyard.storage.s3 import S3BlobStore

    server, bucket = request.getfixturevalue("s3_bucket")
    yield lambda: S3BlobStore(bucket=bucket, endpoint=server.endpoint, region=server.region,
                              access_key_id=server.access_key, secret_access_key=server.secret_key,
                              path_style=True, part_size=PART)


@pytest.fixture
def nodes(db_url: str, stores: Any) -> Iterator[tuple[UploadService, UploadService]]:
    dbs = [Database(db_url), Database(db_url)]
    upgrade(dbs[0])
    made: list[BlobStore] = [stores(), stores()]
    yield tuple(UploadService(UploadStore(db), ContentStore(db), store, exclusive=False)  # type: ignore[misc]
                for db, store in zip(dbs, made))
    for db in dbs:
        db.dispose()


async def body(*pieces: bytes, gate: asyncio.Event | None = None, started: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for i, piece in enumerate(pieces):
        yield piece
        if i == 0:
            if started is not None:
                started.set()
            if gate is not None:
                await gate.wait()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_second_chunk_at_the_same_offset_is_refused_while_the_first_writes(nodes: tuple[UploadService, UploadService]) -> None:
    a, b = nodes
    head = os.urandom(MiB)
    ours, theirs = os.urandom(PART + 2 * MiB), os.urandom(PART + 2 * MiB)  # each crosses a part boundary

    async def run() -> None:
        session = a.start("team/app")
        assert await a.append("team/app", session.id, body(head), None, len(head)) == len(head)
        started, gate = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(a.append("team/app", session.id, body(ours[:PART], ours[PART:], gate=gate, started=started),
                                             None, len(ours)))
        await started.wait()
        with pytest.raises(RangeInvalid, match="another request is writing"):
            await b.append("team/app", session.id, body(theirs), None, len(theirs))
        gate.set()
        assert await first == len(head) + len(ours)
        # the claim ended with the chunk: b goes on from the new offset
        more = os.urandom(1000)
        assert await b.append("team/app", session.id, body(more), None, len(more)) == len(head) + len(ours) + 1000
        data = head + ours + more
        assert await b.finish("team/app", session.id, digest(data), None, None, None) == len(data)
        reader = b.blobs.open_range(digest(data), 0, len(data))
        got = bytearray()
        async for chunk in reader.chunks(False):
            got += chunk
        reader.close()
        assert bytes(got) == data

    asyncio.run(run())


def test_a_failed_chunk_releases_its_claim(nodes: tuple[UploadService, UploadService]) -> None:
    a, b = nodes

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise OSError("the client went away")

    async def run() -> None:
        session = a.start("team/app")
        with pytest.raises(OSError):
            await a.append("team/app", session.id, broken(), None, None)
        assert await b.append("team/app", session.id, body(b"y" * 10), None, 10) == 10  # not blocked

    asyncio.run(run())


def test_a_claim_left_by_a_crashed_request_expires(nodes: tuple[UploadService, UploadService],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = nodes
    session = a.start("team/app")
    assert a.uploads.claim(session.id, 0, 0.5) is not None  # a node took it, then died
    assert a.uploads.claim(session.id, 0, 0.5) is None

    async def run() -> None:
        with pytest.raises(RangeInvalid):
            await b.append("team/app", session.id, body(b"z" * 10), None, 10)
        await asyncio.sleep(0.6)
        assert await b.append("team/app", session.id, body(b"z" * 10), None, 10) == 10

    asyncio.run(run())


def test_a_long_chunk_renews_its_claim(nodes: tuple[UploadService, UploadService], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = nodes
    monkeypatch.setattr(uploads_module, "CLAIM_SECONDS", 0.6)
    monkeypatch.setattr(uploads_module, "RENEW_EVERY", 0.1)

    async def slow() -> AsyncIterator[bytes]:
        for _ in range(12):  # ~1.2 s: twice the claim's lifetime
            yield b"s" * 100
            await asyncio.sleep(0.1)

    async def run() -> None:
        session = a.start("team/app")
        first = asyncio.create_task(a.append("team/app", session.id, slow(), None, None))
        await asyncio.sleep(0.9)  # past the first claim's end: still held, renewed
        with pytest.raises(RangeInvalid, match="another request is writing"):
            await b.append("team/app", session.id, body(b"t" * 10), None, 10)
        assert await first == 1200

    asyncio.run(run())


def test_one_process_takes_no_claims(tmp_path: Path) -> None:
    """One worker on SQLite: its asyncio lock serializes a session's requests; no claim writes."""
    from dockyard.storage.fs import FsBlobStore

    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(db)

    class Counting(UploadStore):
        claims = 0

        def claim(self, *args: Any) -> Any:
            Counting.claims += 1
            return super().claim(*args)

    service = UploadService(Counting(db), ContentStore(db), FsBlobStore(tmp_path / "b", tmp_path / "u", fsync=False))

    async def run() -> None:
        session = service.start("team/app")
        await service.append("team/app", session.id, body(b"abc"), None, 3)

    asyncio.run(run())
    assert Counting.claims == 0
    db.dispose()
