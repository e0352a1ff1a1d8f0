"""Upload ids come from anyone: requests for ids that are malformed or unknown leave no lock (or
other state) behind in the upload service, and a session's lock goes when its last request ends."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.errors import BlobUploadUnknown
from dockyard.meta.uploads import UploadSession
from dockyard.registry.uploads import UploadService
from dockyard.storage.fs import FsBlobStore


class NoSessions:
    """An upload store that knows no session."""

    def get(self, upload_id: str) -> UploadSession | None:
        return None


async def body() -> Any:
    yield b"data"


def service(tmp_path: Path) -> UploadService:
    return UploadService(NoSessions(), None, FsBlobStore(tmp_path / "b", tmp_path / "u", fsync=False))  # type: ignore[arg-type]


def test_unknown_upload_ids_leave_no_lock(tmp_path: Path) -> None:
    uploads = service(tmp_path)
    ids = [uuid.uuid4().hex for _ in range(10_000)] + [f"bad/{i}" for i in range(5_000)] + ["x" * 40] * 5_000

    async def run() -> int:
        refused = 0
        for start in range(0, len(ids), 2_000):
            calls = [uploads.append("team/app", i, body(), None, None) for i in ids[start:start + 2_000]]
            calls += [uploads.finish("team/app", i, "sha256:" + "0" * 64, None, None, None) for i in ids[start:start + 50]]
            results = await asyncio.gather(*calls, return_exceptions=True)
            refused += sum(isinstance(r, BlobUploadUnknown) for r in results)
        return refused

    assert asyncio.run(run()) == len(ids) + 50 * (len(ids) // 2_000)
    assert uploads._locks == {}
    assert uploads._hashers == {}


def test_a_lock_lives_while_requests_use_it(tmp_path: Path) -> None:
    uploads = service(tmp_path)
    upload_id = uuid.uuid4().hex

    async def run() -> None:
        entered = asyncio.Event()
        release = asyncio.Event()
        order: list[str] = []

        async def first() -> None:
            async with uploads._lock(upload_id):
                order.append("first")
                entered.set()
                await release.wait()

        async def second() -> None:
            await entered.wait()
            async with uploads._lock(upload_id):
                order.append("second")

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await entered.wait()
        await asyncio.sleep(0)
        assert list(uploads._locks) == [upload_id]  # held by one, awaited by the other
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["first", "second"]  # one at a time
        assert uploads._locks == {}

    asyncio.run(run())


@pytest.mark.parametrize("upload_id", ["", "a" * 33, "../x", "ab cd"])
def test_malformed_ids_are_unknown_before_any_lock(tmp_path: Path, upload_id: str) -> None:
    uploads = service(tmp_path)
    with pytest.raises(BlobUploadUnknown):
        asyncio.run(uploads.append("team/app", upload_id, body(), None, None))
    assert uploads._locks == {}
