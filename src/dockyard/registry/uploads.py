"""Blob upload sessions: monolithic, streamed and chunked uploads, status, cancel and commit.

A session's bytes go to a staging file; its committed length is the `offset` in the database.
A chunk is all or nothing: when a client disconnects or sends the wrong length, the staging file
is cut back to the offset it had before, so a retry can resume from a consistent state.
The sha256 of what has arrived is kept in memory between chunks; when it is not there (another
process, a restart, or a sha512 digest) the staging file is hashed again at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dockyard.core.digest import Digest
from dockyard.core.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid, SizeInvalid
from dockyard.meta.content import ContentStore
from dockyard.meta.db import utcnow
from dockyard.meta.uploads import UploadSession, UploadStore
from dockyard.registry.ingest import FileSink, pump
from dockyard.storage.base import BlobStore
from dockyard.storage.fs import StagingArea


log = logging.getLogger("dockyard.uploads")


@dataclass(frozen=True, slots=True)
class ChunkRange:
    start: int
    end: int  # inclusive


def parse_content_range(value: str | None) -> ChunkRange | None:
    """`start-end` (as the spec writes it) or `bytes start-end/*`; raises RangeInvalid."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("bytes"):
        text = text[5:].strip().lstrip("=").strip()
        text = text.split("/")[0]
    start_s, sep, end_s = text.partition("-")
    # isdigit() alone accepts '²' and other characters int() refuses: require ASCII.
    if not sep or not (start_s + end_s).isascii() or not start_s.isdigit() or not end_s.isdigit():
        raise RangeInvalid(f"invalid Content-Range {value[:100]!r}: expected start-end")
    start, end = int(start_s), int(end_s)
    if end < start:
        raise RangeInvalid(f"invalid Content-Range {value[:100]!r}: end before start")
    return ChunkRange(start, end)


def _hash_file(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _well_formed(upload_id: str) -> bool:
    return upload_id.isalnum() and len(upload_id) <= 32  # ids are uuid4().hex


def _unknown(upload_id: str, repository: str | None = None) -> BlobUploadUnknown:
    where = f" in {repository}" if repository else ""
    return BlobUploadUnknown(f"upload {upload_id[:40]!r} is unknown{where}", {"uuid": upload_id[:40]})


class UploadService:
    def __init__(self, uploads: UploadStore, content: ContentStore, staging: StagingArea, blobs: BlobStore, fsync: bool) -> None:
        self.uploads = uploads
        self.content = content
        self.staging = staging
        self.blobs = blobs
        self.fsync = fsync
        # upload id -> (offset the hash covers, sha256 state); per process, best effort.
        self._hashers: dict[str, tuple[int, Any]] = {}
        # upload id -> (lock, requests holding or awaiting it); an entry lives only while in use.
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # -- sessions ---------------------------------------------------------------------------------
    def start(self, repository: str) -> UploadSession:
        upload_id = uuid.uuid4().hex
        self.staging.create(upload_id)
        try:
            return self.uploads.create(upload_id, repository)
        except BaseException:
            self.staging.remove(upload_id)  # e.g. the database is full: no orphan file
            raise

    def get(self, repository: str, upload_id: str) -> UploadSession:
        session = self.uploads.get(upload_id) if _well_formed(upload_id) else None
        if session is None or session.repository != repository:
            raise _unknown(upload_id, repository)
        return session

    def cancel(self, repository: str, upload_id: str) -> None:
        self.get(repository, upload_id)
        # The file first: on a full disk this frees space even when the database cannot be
        # written yet (a session without its file is dropped by the next request on it).
        self.staging.remove(upload_id)
        self._forget(upload_id)
        try:
            self.uploads.delete(upload_id)
        except Exception:
            # E.g. a full disk refuses the database write. Without its file the session is dead
            # already: the next request on it answers BLOB_UPLOAD_UNKNOWN and drops the row, and
            # the purge removes it otherwise. The cancel has happened, as far as a client can tell.
            log.warning("upload %s cancelled; its session row is left for the purge", upload_id, exc_info=True)

    @contextlib.asynccontextmanager
    async def _lock(self, upload_id: str) -> AsyncIterator[None]:
        """One request at a time per session. Anyone may send any upload id, so a lock exists only
        for a well-formed id and only while a request holds or awaits it: unknown ids leave nothing
        behind. (All on the event loop's thread: no lock needed around the dict.)"""
        if not _well_formed(upload_id):
            raise _unknown(upload_id)
        entry = self._locks.get(upload_id)
        if entry is None:
            entry = self._locks[upload_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0] and self._locks.get(upload_id) is entry:
                del self._locks[upload_id]

    # -- appending --------------------------------------------------------------------------------
    async def append(
        self, repository: str, upload_id: str, body: AsyncIterator[bytes], content_range: ChunkRange | None, content_length: int | None
    ) -> int:
        """Append one chunk; returns the new offset. RangeInvalid when the chunk is out of order."""
        async with self._lock(upload_id):
            return await self._append_locked(repository, upload_id, body, content_range, content_length)

    async def _append_locked(
        self, repository: str, upload_id: str, body: AsyncIterator[bytes], content_range: ChunkRange | None,
        content_length: int | None, record: bool = True,
    ) -> int:
        loop = asyncio.get_running_loop()
        session = await loop.run_in_executor(None, self.get, repository, upload_id)
        offset = session.offset
        if content_range is not None:
            if content_range.start != offset:
                raise RangeInvalid(
                    f"chunk starts at {content_range.start} but the upload has {offset} bytes",
                    {"offset": offset},
                )
            expected = content_range.end - content_range.start + 1
            if content_length is not None and content_length != expected:
                raise SizeInvalid(f"Content-Length {content_length} does not match Content-Range {content_range.start}-{content_range.end}")
            content_length = expected
        cached = self._hashers.pop(upload_id, None)
        hasher = cached[1] if cached and cached[0] == offset else (hashlib.sha256() if offset == 0 else None)
        path = self.staging.path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise self._lost(upload_id) from None
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            sink = FileSink(fd, hasher, self.fsync, offset)
            try:
                received = await pump(body, sink, content_length)
                if content_length is not None and received != content_length:
                    raise SizeInvalid(f"received {received} bytes, expected {content_length}")
            except BaseException:
                os.ftruncate(fd, offset)  # all or nothing
                raise
            if os.fstat(fd).st_size != offset + received:
                os.ftruncate(fd, offset + received)  # drop bytes a crashed earlier chunk left behind
        finally:
            os.close(fd)
        new_offset = offset + received
        # The last chunk of a closing PUT is not recorded: the commit ends the session anyway.
        if record and received and not await loop.run_in_executor(None, self.uploads.advance, upload_id, offset, new_offset):
            raise RangeInvalid("the upload was changed by another request meanwhile")
        if hasher is not None:
            self._hashers[upload_id] = (new_offset, hasher)
        return new_offset

    # -- committing -------------------------------------------------------------------------------
    async def finish(self, repository: str, upload_id: str, digest: str, body: AsyncIterator[bytes] | None,
                     content_range: ChunkRange | None, content_length: int | None) -> int:
        """Append the last chunk (if any), check the digest, and commit the blob. Returns its size."""
        expected = Digest.parse(digest)
        async with self._lock(upload_id):
            if body is not None and (content_length is None or content_length > 0):
                size = await self._append_locked(repository, upload_id, body, content_range, content_length, record=False)
            else:
                size = (await asyncio.get_running_loop().run_in_executor(None, self.get, repository, upload_id)).offset
            cached = self._hashers.pop(upload_id, None)
            loop = asyncio.get_running_loop()
            path = str(self.staging.path(upload_id))
            if not os.path.exists(path):
                raise self._lost(upload_id)
            if expected.algorithm == "sha256" and cached is not None and cached[0] == size:
                actual = cached[1].hexdigest()
            else:
                actual = await loop.run_in_executor(None, _hash_file, path, expected.algorithm)
            if actual != expected.encoded:
                await loop.run_in_executor(None, self._discard, upload_id)
                raise DigestInvalid(f"the uploaded content has digest {expected.algorithm}:{actual}, not {digest}",
                                    {"expected": digest, "actual": f"{expected.algorithm}:{actual}"})
            await loop.run_in_executor(None, self._commit, repository, upload_id, str(expected), size)
            self._forget(upload_id)
            return size

    def _lost(self, upload_id: str) -> BlobUploadUnknown:
        """A session whose staging file is gone cannot go on: drop it, the client starts again."""
        self._discard(upload_id)
        return BlobUploadUnknown(f"upload {upload_id} lost its data; start the upload again", {"uuid": upload_id})

    def _discard(self, upload_id: str) -> None:
        self.uploads.delete(upload_id)
        self.staging.remove(upload_id)
        self._forget(upload_id)

    def _forget(self, upload_id: str) -> None:
        """Drop the in-memory state of a session that has ended (its hash state; its lock goes
        when the last request using it is done)."""
        self._hashers.pop(upload_id, None)

    def _commit(self, repository: str, upload_id: str, digest: str, size: int, session: bool = True) -> None:
        # Crash safety: the bytes are synced first; the rename into the store happens inside the
        # transaction that records the blob (and ends the session), so a crash leaves either a
        # stray staging file for the purge or a complete blob, never a row without its bytes.
        staged = self.staging.path(upload_id)
        self.blobs.sync(staged)
        try:
            self.content.add_blob(repository, digest, size, lambda: self.blobs.place(staged, digest),
                                  end_session=upload_id if session else None)
        except BaseException:
            if session and not staged.exists():
                # The transaction failed (a full disk, say) after `place` moved the bytes into the
                # store. They stay there unreferenced (GC removes them, a later push of the same
                # digest reuses them); moving them back could race with a push of the same
                # digest. The session cannot be finished any more: the client starts again.
                try:
                    self._lost(upload_id)
                except Exception:
                    pass  # the database is failing too; the next request on it tries again
            raise

    async def monolithic(self, repository: str, digest: str, body: AsyncIterator[bytes], content_length: int | None) -> int:
        """POST ?digest= with the whole blob: no session row, straight to a staging file."""
        expected = Digest.parse(digest)
        upload_id = uuid.uuid4().hex
        path = self.staging.path(upload_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            sink = FileSink(fd, hashlib.new(expected.algorithm), self.fsync)
            try:
                received = await pump(body, sink, content_length)
                if content_length is not None and received != content_length:
                    raise SizeInvalid(f"received {received} bytes, expected {content_length}")
            except BaseException:
                os.close(fd)
                fd = -1
                self.staging.remove(upload_id)
                raise
        finally:
            if fd >= 0:
                os.close(fd)
        assert sink.hasher is not None
        actual = sink.hasher.hexdigest()
        if actual != expected.encoded:
            self.staging.remove(upload_id)
            raise DigestInvalid(f"the uploaded content has digest {expected.algorithm}:{actual}, not {digest}",
                                {"expected": digest, "actual": f"{expected.algorithm}:{actual}"})
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._commit, repository, upload_id, digest, received, False)
        except Exception:
            self.staging.remove(upload_id)  # no session owns it: do not leave it for the purge (full disk)
            raise
        return received

    # -- housekeeping -----------------------------------------------------------------------------
    def purge(self, older_than_seconds: int, orphan_after_seconds: int = 600) -> int:
        """Remove sessions idle for longer than the limit, and staging files that no session owns
        (left by a monolithic upload cut short by a crash) once they stop changing."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        removed = 0
        for upload_id in self.uploads.stale(cutoff):
            self._discard(upload_id)
            removed += 1
        live = self.uploads.all_ids()
        cutoff_ts = (utcnow() - timedelta(seconds=orphan_after_seconds)).timestamp()
        files = list(self.staging.iter_files())
        for name, mtime in files:
            if name not in live and mtime < cutoff_ts:
                self.staging.remove(name)
                removed += 1
        if orphan_after_seconds == 0:
            # At startup (nothing in flight): a session without its staging file died in the
            # middle of its commit (the file moved into the store, the transaction did not
            # commit). It can never be finished; drop it now rather than a day later.
            for upload_id in live - {name for name, _ in files}:
                self._discard(upload_id)
                removed += 1
        return removed + self.blobs.purge_staged(cutoff_ts)


def check_upload_digest_param(value: str | None) -> str:
    if not value:
        raise BlobUploadInvalid("the closing PUT needs a ?digest= parameter")
    Digest.parse(value)
    return value
