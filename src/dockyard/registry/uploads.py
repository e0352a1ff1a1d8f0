"""Blob upload sessions: monolithic, streamed and chunked uploads, status, cancel and commit.

A session's bytes go to the blob store's staging (a file, or an S3 multipart upload); its
committed length, the store's staging state and the sha256 of its bytes so far are in its
database row, so any node can take its next chunk. A chunk is all or nothing: when a client
disconnects or sends the wrong length, the staging is cut back to what the row describes, so a
retry can resume from a consistent state. The sha256 state is kept in memory between chunks;
when it is not there (another node took the previous chunk, a restart, or a sha512 digest) the
staged bytes are hashed again at commit, unless the closing PUT adds nothing to what the row's
digest covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
import time
from datetime import datetime, timedelta
from typing import Any, TypeVar

from dockyard.core.digest import Digest
from dockyard.core.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid, SizeInvalid
from dockyard.core.events import SYSTEM, Origin
from dockyard.meta.content import ContentStore
from dockyard.meta.db import utcnow
from dockyard.meta.uploads import UploadSession, UploadStore
from dockyard.registry.ingest import pump
from dockyard.storage.base import BlobStore, SessionState, Staged


log = logging.getLogger("dockyard.uploads")
T = TypeVar("T")
# How long a chunk's claim on its session lasts unless renewed: after a node crashed mid-chunk,
# the upload takes chunks again (on any node) after at most this long.
CLAIM_SECONDS = 15.0
RENEW_EVERY = 5.0  # a chunk still streaming renews its claim this often


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Blocking work (database, store) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


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


def _well_formed(upload_id: str) -> bool:
    return upload_id.isalnum() and len(upload_id) <= 32  # ids are uuid4().hex


def _unknown(upload_id: str, repository: str | None = None) -> BlobUploadUnknown:
    where = f" in {repository}" if repository else ""
    return BlobUploadUnknown(f"upload {upload_id[:40]!r} is unknown{where}", {"uuid": upload_id[:40]})


class UploadService:
    def __init__(self, uploads: UploadStore, content: ContentStore, blobs: BlobStore, exclusive: bool = True) -> None:
        """`exclusive`: this process is the only one writing to its uploads (one worker on SQLite);
        otherwise a chunk claims its session in the database before it writes anything."""
        self.uploads = uploads
        self.content = content
        self.blobs = blobs
        self.exclusive = exclusive
        # upload id -> (offset the hash covers, sha256 state); per process, best effort (the
        # session row keeps the digest so far, so another node can check a closing PUT too).
        self._hashers: dict[str, tuple[int, Any]] = {}
        # upload id -> (lock, requests holding or awaiting it); an entry lives only while in use.
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def check_room(self, length: int) -> None:
        """Refuse a blob of `length` bytes before reading it when the store cannot take it:
        BlobTooLarge (413) when it never could, OSError(ENOSPC) (507, like any full disk; the
        client may retry once an operator freed space) when it cannot now."""
        self.blobs.check_room(length)

    # -- sessions ---------------------------------------------------------------------------------
    def start(self, repository: str) -> UploadSession:
        upload_id = uuid.uuid4().hex
        state = self.blobs.session_start(upload_id)
        try:
            return self.uploads.create(upload_id, repository, state)
        except BaseException:
            self.blobs.session_delete(upload_id, state)  # e.g. the database is full: no orphan file
            raise

    def get(self, repository: str, upload_id: str) -> UploadSession:
        session = self.uploads.get(upload_id) if _well_formed(upload_id) else None
        if session is None or session.repository != repository:
            raise _unknown(upload_id, repository)
        return session

    def cancel(self, repository: str, upload_id: str) -> None:
        session = self.get(repository, upload_id)
        # The data first: on a full disk this frees space even when the database cannot be
        # written yet (a session without its file is dropped by the next request on it).
        self.blobs.session_delete(upload_id, session.store_state)
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
        """One request at a time per session in this process (across nodes the offset check in
        the database decides). Anyone may send any upload id, so a lock exists only for a
        well-formed id and only while a request holds or awaits it: unknown ids leave nothing
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

    async def _store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Opening a writer: a local open(2) on fs, cheaper inline than a hop to a worker thread;
        network requests (S3) in a thread."""
        return fn(*args) if self.blobs.kind == "fs" else await run_sync(fn, *args)

    # -- appending --------------------------------------------------------------------------------
    async def append(
        self, repository: str, upload_id: str, body: AsyncIterator[bytes], content_range: ChunkRange | None, content_length: int | None
    ) -> int:
        """Append one chunk; returns the new offset. RangeInvalid when the chunk is out of order."""
        async with self._lock(upload_id):
            session = await run_sync(self.get, repository, upload_id)
            return (await self._append_locked(session, body, content_range, content_length))[0]

    async def _append_locked(
        self, session: UploadSession, body: AsyncIterator[bytes], content_range: ChunkRange | None,
        content_length: int | None, record: bool = True,
    ) -> tuple[int, SessionState]:
        """The new offset and staging state. The last chunk of a closing PUT is not recorded
        (`record`): the commit ends the session anyway."""
        upload_id, offset = session.id, session.offset
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
        claim = None if self.exclusive else _Claim(self.uploads, upload_id, offset)
        if claim is not None:
            await claim.take()
        cached = self._hashers.pop(upload_id, None)
        hasher = cached[1] if cached and cached[0] == offset else (hashlib.sha256() if offset == 0 else None)
        try:
            try:
                writer = await self._store_call(self.blobs.session_append, upload_id, session.store_state, offset, hasher)
            except FileNotFoundError:
                raise await run_sync(self._lost, session) from None
            try:
                received = await pump(claim.renewing(body) if claim else body, writer, content_length)
                if content_length is not None and received != content_length:
                    raise SizeInvalid(f"received {received} bytes, expected {content_length}")
                state = await run_sync(writer.commit)
            except BaseException:
                await _shielded(writer.rollback)
                raise
            new_offset = offset + received
            if record and received:
                hashed = f"sha256:{hasher.copy().hexdigest()}" if hasher is not None else None
                try:
                    advanced = await run_sync(self.uploads.advance, upload_id, offset, new_offset, state, hashed)
                except BaseException:
                    await _shielded(writer.rollback)
                    raise
                if not advanced:
                    await _shielded(writer.rollback)
                    raise RangeInvalid("the upload was changed by another request meanwhile")
                if claim is not None:
                    claim.held = None  # advance() ended it
                await run_sync(writer.superseded)
        except BaseException:
            if claim is not None:
                await _shielded(claim.release)
            raise
        if hasher is not None:
            self._hashers[upload_id] = (new_offset, hasher)
        return new_offset, state

    # -- committing -------------------------------------------------------------------------------
    async def finish(self, repository: str, upload_id: str, digest: str, body: AsyncIterator[bytes] | None,
                     content_range: ChunkRange | None, content_length: int | None, origin: Origin = SYSTEM) -> int:
        """Append the last chunk (if any), check the digest, and commit the blob. Returns its size."""
        expected = Digest.parse(digest)
        async with self._lock(upload_id):
            session = await run_sync(self.get, repository, upload_id)
            size, state, hashed = session.offset, session.store_state, session.hashed
            if body is not None and (content_length is None or content_length > 0):
                size, state = await self._append_locked(session, body, content_range, content_length, record=False)
                hashed = None
            cached = self._hashers.pop(upload_id, None)
            try:
                staged = await run_sync(self.blobs.session_stage, upload_id, state, size)
            except FileNotFoundError:
                raise await run_sync(self._lost, session) from None
            if expected.algorithm == "sha256" and cached is not None and cached[0] == size:
                actual = cached[1].hexdigest()
            elif expected.algorithm == "sha256" and hashed is not None and size == session.offset:
                actual = hashed.partition(":")[2]  # hashed by the node that took the last PATCH
            else:
                actual = await run_sync(staged.digest, expected.algorithm)
            if actual != expected.encoded:
                await run_sync(self._discard, upload_id, state)
                raise DigestInvalid(f"the uploaded content has digest {expected.algorithm}:{actual}, not {digest}",
                                    {"expected": digest, "actual": f"{expected.algorithm}:{actual}"})
            await run_sync(self._commit, repository, staged, str(expected), size, upload_id, state, origin)
            self._forget(upload_id)
            return size

    def _lost(self, session: UploadSession) -> BlobUploadUnknown:
        """A session whose staged data is gone cannot go on: drop it, the client starts again."""
        self._discard(session.id, session.store_state)
        return BlobUploadUnknown(f"upload {session.id} lost its data; start the upload again", {"uuid": session.id})

    def _discard(self, upload_id: str, state: SessionState) -> None:
        self.uploads.delete(upload_id)
        self.blobs.session_delete(upload_id, state)
        self._forget(upload_id)

    def _forget(self, upload_id: str) -> None:
        """Drop the in-memory state of a session that has ended (its hash state; its lock goes
        when the last request using it is done)."""
        self._hashers.pop(upload_id, None)

    def _commit(self, repository: str, staged: Staged, digest: str, size: int, upload_id: str | None,
                state: SessionState = None, origin: Origin = SYSTEM) -> None:
        # Crash safety: the bytes are made durable first; placing them under the digest happens
        # inside the transaction that records the blob (and ends the session), so a crash leaves
        # either stray staged data for the purge or a complete blob, never a row without bytes.
        staged.seal()
        try:
            self.content.add_blob(repository, digest, size, lambda: staged.place(digest), end_session=upload_id,
                                  origin=origin)
        except BaseException:
            if upload_id is not None:
                # The transaction failed (a full disk, say), perhaps after `place` moved the bytes
                # into the store. They stay there unreferenced (GC removes them, a later push of
                # the same digest reuses them); moving them back could race with a push of the
                # same digest. The session cannot be finished any more: the client starts again.
                try:
                    self._discard(upload_id, state)
                except Exception:
                    pass  # the database is failing too; the next request on it tries again
            raise
        if upload_id is not None:
            try:
                self.blobs.session_delete(upload_id, state)  # what placing left staged (S3: the parts' object)
            except Exception:
                log.warning("upload %s committed; its staged data is left for the purge", upload_id, exc_info=True)

    async def monolithic(self, repository: str, digest: str, body: AsyncIterator[bytes], content_length: int | None,
                         origin: Origin = SYSTEM) -> int:
        """POST ?digest= with the whole blob: no session row, straight to the store's staging."""
        expected = Digest.parse(digest)
        writer = await self._store_call(self.blobs.new_blob, expected.algorithm, digest, content_length)
        try:
            received = await pump(body, writer, content_length)
            if content_length is not None and received != content_length:
                raise SizeInvalid(f"received {received} bytes, expected {content_length}")
            actual = writer.hexdigest()
            if actual != expected.encoded:
                raise DigestInvalid(f"the uploaded content has digest {expected.algorithm}:{actual}, not {digest}",
                                    {"expected": digest, "actual": f"{expected.algorithm}:{actual}"})
            staged = await run_sync(writer.finish)
        except BaseException:
            await _shielded(writer.abort)
            raise
        try:
            await run_sync(self._commit, repository, staged, digest, received, None, None, origin)
        except BaseException:
            await _shielded(staged.discard)  # no session owns it: do not leave it for the purge (full disk)
            raise
        return received

    def put_bytes(self, repository: str, data: bytes, origin: Origin = SYSTEM) -> str:
        """Store a small blob the server made itself (an SBOM); returns its sha256 digest."""
        digest = str(Digest.of(data))
        if self.content.blob_size_in(repository, digest) is not None:
            return digest
        writer = self.blobs.new_blob("sha256", digest, len(data))
        try:
            writer.write([data])
            staged = writer.finish()
        except BaseException:
            writer.abort()
            raise
        try:
            self._commit(repository, staged, digest, len(data), None, None, origin)
        except BaseException:
            staged.discard()
            raise
        return digest

    # -- housekeeping -----------------------------------------------------------------------------
    def purge(self, older_than_seconds: int, orphan_after_seconds: int = 600) -> int:
        """Remove sessions idle for longer than the limit, and staged data that no session owns
        (left by a monolithic upload cut short by a crash) once it stops changing.

        `orphan_after_seconds=0` is for the start of a node that is the only one using its store
        (nothing can be in flight): then a session whose staged data is gone is dropped too."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        removed = 0
        for upload_id, state in self.uploads.stale(cutoff):
            self._discard(upload_id, state)
            removed += 1
        live = self.uploads.all_ids()
        cutoff_ts = (utcnow() - timedelta(seconds=orphan_after_seconds)).timestamp()
        removed += self.blobs.session_orphans(live, cutoff_ts)
        if orphan_after_seconds == 0:
            for upload_id in self.blobs.sessions_without_data(live):
                self.uploads.delete(upload_id)
                removed += 1
        return removed


class _Claim:
    """A chunk's claim on its session row (see UploadStore.claim), renewed while the body streams."""

    def __init__(self, uploads: UploadStore, upload_id: str, offset: int) -> None:
        self.uploads = uploads
        self.upload_id = upload_id
        self.offset = offset
        self.held: datetime | None = None

    async def take(self) -> None:
        self.held = await run_sync(self.uploads.claim, self.upload_id, self.offset, CLAIM_SECONDS)
        if self.held is None:
            raise RangeInvalid("another request is writing to this upload, or it moved on meanwhile: "
                               "check its offset with GET and go on from there", {"offset": self.offset})

    async def renewing(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        last = time.monotonic()
        async for chunk in body:
            # Renewed before the bytes go on: after a stall longer than the claim, another
            # request may have taken the session, and nothing more may be written then.
            if time.monotonic() - last > RENEW_EVERY:
                assert self.held is not None
                self.held = await run_sync(self.uploads.renew, self.upload_id, self.offset, self.held, CLAIM_SECONDS)
                if self.held is None:
                    raise RangeInvalid("this chunk stalled so long that another request took over the upload")
                last = time.monotonic()
            yield chunk

    def release(self) -> None:
        if self.held is not None:
            self.uploads.release(self.upload_id, self.held)
            self.held = None


async def _shielded(fn: Callable[[], object]) -> None:
    """Clean-up after a failed write: run to the end even when the request is being cancelled
    (a client that went away), so no half-written data is left behind."""
    task = asyncio.ensure_future(run_sync(fn))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def check_upload_digest_param(value: str | None) -> str:
    if not value:
        raise BlobUploadInvalid("the closing PUT needs a ?digest= parameter")
    Digest.parse(value)
    return value
