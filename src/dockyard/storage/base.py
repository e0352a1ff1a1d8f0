"""The blob storage seam: every byte of a blob goes through these interfaces, and nothing outside
`storage/` knows whether it lands in local files (`fs.py`) or in an S3-compatible bucket (`s3.py`).

Methods are synchronous and may block (the HTTP layer calls them from worker threads), except
`BlobReader.chunks`, which is iterated on the event loop.

Writing is in two steps so a blob is never visible before its digest is checked:
1. bytes go to a *staging* place through a `Writer` (hashed while they stream): a monolithic
   upload's `new_blob()`, or an upload session's `append()`, whose state (`SessionState`, JSON
   kept in the session's database row) lets any node go on with the session;
2. the caller checks the digest and records the blob; `Staged.place()` runs *inside* that
   metadata transaction (after the blob row is locked), so garbage collection, which deletes
   inside its own transaction, can never remove bytes a new row points to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, BinaryIO, Protocol

# A session's staging state as the store defines it (JSON-serialisable; None for a fresh session).
SessionState = dict[str, Any] | None


class BlobReader(Protocol):
    """An opened blob, or a range of one, ready to be sent."""

    length: int

    def chunks(self, reuse_buffer: bool) -> AsyncIterator[bytes | bytearray]:
        """The bytes in order. With `reuse_buffer`, a chunk may be overwritten once the next is
        asked for (the consumer has copied it by then); otherwise each chunk is its own object.
        Raises OSError when the blob is cut short: the consumer closes the connection mid-body."""

    def close(self) -> None:
        """Release what the reader holds (idempotent)."""


class Writer(Protocol):
    """Where an upload's bytes go while they arrive; `write` runs in a worker thread."""

    def write(self, chunks: list[bytes]) -> None:
        """Append the chunks (and feed the writer's hasher, if it has one)."""


class Staged(Protocol):
    """Bytes written and complete but not yet stored under a digest."""

    size: int

    def digest(self, algorithm: str) -> str:
        """Hex digest of the staged bytes, read back from where they are (when no hasher saw them)."""

    def seal(self) -> None:
        """Make the staged bytes durable before they are placed (fsync); outside the transaction."""

    def place(self, digest: str) -> None:
        """Store the bytes as `digest`, atomically; idempotent when the blob is stored already.
        Called inside the metadata transaction that records the blob."""

    def discard(self) -> None:
        """Drop the staged bytes (a digest mismatch, a failed commit); idempotent."""


class BlobWriter(Writer, Protocol):
    """A monolithic upload: `hexdigest` is what the writer's hasher saw."""

    def hexdigest(self) -> str: ...

    def finish(self) -> Staged:
        """Everything was written: stage it."""

    def abort(self) -> None:
        """The upload failed: remove whatever was written."""


class SessionWriter(Writer, Protocol):
    """One chunk of an upload session; all or nothing."""

    def commit(self) -> SessionState:
        """The chunk arrived whole: make it part of the session and return the new state (the
        caller records it with the new offset; until then the old state still describes the
        session exactly)."""

    def rollback(self) -> None:
        """The chunk failed: leave the session as it was before the chunk."""

    def superseded(self) -> None:
        """The new state is recorded: remove what only the old state needed (best effort)."""


class BlobStore(Protocol):
    kind: str  # "fs" or "s3"
    shared: bool  # several nodes may use the same store (each node cannot see the others' work)

    # -- reading ----------------------------------------------------------------------------------
    def stat(self, digest: str) -> int | None:
        """Size in bytes of a stored blob, or None when it is not stored."""

    def read_small(self, digest: str, limit: int) -> bytes:
        """At most `limit` bytes from the start of a stored blob (configs, manifests pushed before
        migration 0005). Raises FileNotFoundError."""

    def open_range(self, digest: str, offset: int, length: int) -> BlobReader:
        """Open `length` bytes from `offset` for sending. Raises FileNotFoundError."""

    def redirect_url(self, digest: str) -> str | None:
        """A URL clients can fetch the blob from directly (a presigned S3 URL), or None."""

    def open_stream(self, digest: str) -> BinaryIO:
        """The whole blob as a file object read sequentially in a worker thread (the scanner);
        the caller closes it. Raises FileNotFoundError."""

    # -- deleting and listing (garbage collection) ------------------------------------------------
    def delete_many(self, digests: Iterable[str]) -> None:
        """Remove blobs, in batches where the backend has them; missing blobs are not an error."""

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored digest with its modification time (Unix seconds)."""

    # -- writing ----------------------------------------------------------------------------------
    def check_room(self, length: int) -> None:
        """Raise BlobTooLarge when a blob of `length` bytes can never be stored, OSError(ENOSPC)
        when there is no room for it now."""

    def new_blob(self, algorithm: str, expected: str | None, size_hint: int | None) -> BlobWriter:
        """Start a monolithic upload hashed with `algorithm`; `expected` is the digest the client
        announced (a backend may stage straight at its final name and place without copying)."""

    def session_start(self, upload_id: str) -> SessionState:
        """Prepare staging for a new upload session."""

    def session_append(self, upload_id: str, state: SessionState, offset: int, hasher: Any | None) -> SessionWriter:
        """A writer for the chunk that starts at `offset` (the session's recorded length)."""

    def session_stage(self, upload_id: str, state: SessionState, size: int) -> Staged:
        """The session's `size` bytes, complete: stage them for the commit. Raises
        FileNotFoundError when the staged bytes are gone (the session cannot go on)."""

    def session_delete(self, upload_id: str, state: SessionState) -> None:
        """Remove everything staged for the session (cancel, purge); idempotent."""

    def session_orphans(self, live: set[str], older_than: float) -> int:
        """Remove staged data of sessions not in `live` (and of monolithic uploads cut short by a
        crash) untouched since `older_than`; returns the count."""

    def sessions_without_data(self, live: set[str]) -> set[str]:
        """Those of `live` whose staged data is known to be gone (checked at start-up on a single
        node); a store that cannot tell cheaply returns an empty set."""
