"""Blobs in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, Aliyun OSS, Tencent COS), on boto3.

Keys (under `prefix`):

    blobs/sha256/ab/abcdef…              one object per blob, written only once verified
    uploads/<session>/data               the multipart upload of a session's parts, completed at
                                         commit and then copied under its digest
    uploads/<session>/tail-<offset>-<r>  a session's last bytes, shorter than a part (S3 wants
                                         parts of at least 5 MiB, except the last)
    dockyard/owner                       which installation (database) uses the bucket

A session's state (in its database row, so any node can take its next chunk) names the
multipart upload, the parts so far (number, ETag, size) and the tail object. A chunk is cut into
parts of `part_size`; what is left over, less than 5 MiB, becomes a new tail object, which the
next chunk (on whichever node) reads back and continues. Tail keys are never reused, so a chunk
that fails, or that the database refuses, cannot damage what the recorded state describes.

Like the CNCF distribution registry's S3 driver, a session's bytes are assembled under a
temporary key and copied under the digest once it is checked (the digest is only known at the
end). A monolithic upload knows its digest up front: it goes straight to its final key, small
ones in one PUT, large ones as a multipart upload completed only after the digest checks out.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dockyard.core.digest import Digest
from dockyard.core.errors import BlobTooLarge
from dockyard.storage.base import SessionState

MIN_PART = 5 << 20  # S3's smallest part but the last
MAX_OBJECT = 5 << 40  # S3's largest object
MAX_PARTS = 10000  # and its most parts
COPY_MAX = 5 << 30  # CopyObject's limit; larger objects are copied part by part
DELETE_BATCH = 1000  # DeleteObjects' limit
READ_CHUNK = 1 << 20
BUFFER_CHUNK = 4 << 20  # per read into a reused buffer (two of them per GET)
PARTS_IN_FLIGHT = 2  # per upload: a part uploading while the next one fills
COMPLETE_TRIES = 5


def _not_found(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("NoSuchKey", "404", "NotFound", "NoSuchUpload") or status == 404


class S3Reader:
    """A GET's body, read in a worker thread, the next read overlapping the send of the current
    chunk. When the server copies each chunk before `send` returns (`reuse_buffer`), the bytes
    go from the socket straight into two buffers used in turn (http.client's readinto under
    urllib3), instead of through urllib3's read(), which copies every chunk twice more."""

    def __init__(self, body: Any, length: int, sink: Any | None = None) -> None:
        self.body = body
        self.length = length
        self.sink = sink  # storage/cache.py's Fill: sees every byte, in the reading thread

    def close(self) -> None:
        if self.sink is not None:
            self.sink.abort()  # nothing when it saw every byte
            self.sink = None
        if self.body is not None:
            self.body.close()
            self.body = None

    def _read(self, n: int) -> bytes:
        chunk: bytes = self.body.read(n)
        if self.sink is not None and chunk:
            self.sink.write(chunk)
        return chunk

    def _socket_reader(self) -> Any | None:
        raw = getattr(self.body, "_raw_stream", None)  # botocore StreamingBody -> urllib3 HTTPResponse
        fp = getattr(raw, "_fp", None)  # -> http.client.HTTPResponse
        if fp is None or not hasattr(fp, "readinto") or getattr(raw, "chunked", True):
            return None
        if raw.headers.get("content-encoding", "identity") != "identity":
            return None
        return fp

    async def chunks(self, reuse_buffer: bool) -> AsyncIterator[bytes | bytearray]:
        fp = self._socket_reader() if reuse_buffer and self.length else None
        if fp is not None:
            async for chunk in self._into_buffers(fp):
                yield chunk
            return
        loop = asyncio.get_running_loop()
        remaining = self.length
        nxt = loop.run_in_executor(None, self._read, min(READ_CHUNK, remaining)) if remaining else None
        try:
            while nxt is not None:
                chunk = await nxt
                if not chunk:
                    raise OSError(f"object ended {remaining} bytes early")
                remaining -= len(chunk)
                nxt = loop.run_in_executor(None, self._read, min(READ_CHUNK, remaining)) if remaining > 0 else None
                yield chunk
        finally:
            _forget(nxt)

    async def _into_buffers(self, fp: Any) -> AsyncIterator[bytearray]:
        loop = asyncio.get_running_loop()
        size = min(BUFFER_CHUNK, self.length)
        buffers = [bytearray(size), bytearray(size)]
        sink = self.sink

        def fill(buf: bytearray, n: int) -> bytearray:
            view, got = memoryview(buf), 0
            while got < n:
                k = fp.readinto(view[got:n])
                if not k:
                    raise OSError(f"object ended {self.length - got} bytes early")
                got += k
            if sink is not None:
                sink.write(view[:n])
            return buf if n == len(buf) else bytearray(view[:n])

        remaining, turn = self.length, 0
        nxt: Any = loop.run_in_executor(None, fill, buffers[0], min(size, remaining))
        try:
            while nxt is not None:
                chunk = await nxt
                remaining -= len(chunk)
                turn ^= 1  # the other buffer: the server copied its last chunk when send returned
                nxt = loop.run_in_executor(None, fill, buffers[turn], min(size, remaining)) if remaining > 0 else None
                yield chunk
        finally:
            _forget(nxt)


def _forget(pending: Any) -> None:
    """A read still in flight when the client went away mid-body: not awaited, its outcome dropped."""
    if pending is not None and not pending.done():
        pending.add_done_callback(lambda f: f.cancelled() or f.exception())


class _Parts:
    """Parts of one multipart upload, uploaded by the store's pool, at most PARTS_IN_FLIGHT at once."""

    def __init__(self, store: "S3BlobStore", key: str, upload_id: str | None, parts: list[list[Any]]) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self.parts = [list(p) for p in parts]  # [number, etag, size]
        self.pending: list[tuple[int, int, Future[Any]]] = []

    def add(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.store.client.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + len(self.pending) + 1
        while len(self.pending) >= PARTS_IN_FLIGHT:
            self._settle_one()
        future = self.store.pool.submit(self.store.client.upload_part, Bucket=self.store.bucket, Key=self.key,
                                        UploadId=self.upload_id, PartNumber=number, Body=data)
        self.pending.append((number, len(data), future))

    def _settle_one(self) -> None:
        number, size, future = self.pending.pop(0)
        try:
            etag = future.result()["ETag"]
        except ClientError as exc:
            if _not_found(exc):  # the session was cancelled or purged meanwhile
                raise FileNotFoundError(f"multipart upload of {self.key} is gone") from None
            raise
        self.parts.append([number, etag, size])

    def settle(self) -> None:
        """Wait for every part in flight (raising the first failure)."""
        try:
            while self.pending:
                self._settle_one()
        finally:
            for _, _, future in self.pending:  # after a failure: let the others finish quietly
                future.cancel()
            self.pending.clear()

    @property
    def size(self) -> int:
        return sum(p[2] for p in self.parts)


class S3Staged:
    """A complete object under a temporary key (a session's), or bytes in memory / a multipart
    upload at the final key (a monolithic upload's), ready to be placed."""

    def __init__(self, store: "S3BlobStore", size: int, key: str | None = None, data: bytes | None = None,
                 parts: _Parts | None = None) -> None:
        self.store = store
        self.size = size
        self.key = key
        self.data = data
        self.parts = parts
        self.placed = False
        self.completed = False

    def digest(self, algorithm: str) -> str:
        h = hashlib.new(algorithm)
        if self.data is not None:
            h.update(self.data)
        elif self.key is not None:
            body = self.store.client.get_object(Bucket=self.store.bucket, Key=self.key)["Body"]
            try:
                for chunk in body.iter_chunks(READ_CHUNK):
                    h.update(chunk)
            finally:
                body.close()
        else:
            raise ValueError("a multipart upload cannot be read before it is complete")
        return h.hexdigest()

    def seal(self) -> None:
        pass  # S3 acknowledges a write once it is durable

    def place(self, digest: str) -> None:
        store, target = self.store, self.store.blob_key(digest)
        if self.parts is not None:  # a monolithic multipart upload
            if not self.completed:
                store._complete(self.parts.key, self.parts)
                self.completed = True
            if self.parts.key != target:  # made under a temporary key: the digest was not known
                if store.stat(digest) is None:
                    store._copy(self.parts.key, target, self.size)
                store._delete_keys([self.parts.key])
            self.placed = True
            return
        if self.data is not None:  # one PUT; rewriting the same bytes is harmless
            store.client.put_object(Bucket=store.bucket, Key=target, Body=self.data)
        elif self.key is not None and store.stat(digest) is None:  # a HEAD is cheaper than a copy
            store._copy(self.key, target, self.size)
        self.placed = True

    def discard(self) -> None:
        if self.parts is not None and not self.placed and self.parts.upload_id is not None:
            if not self.completed:
                self.store._abort(self.parts.key, self.parts.upload_id)
            elif self.parts.key.startswith(f"{self.store.prefix}uploads/"):  # completed at a temporary key
                self.store._delete_keys([self.parts.key])
        self.data = None


class S3BlobWriter:
    """A monolithic upload: in memory up to one part, then a multipart upload at the final key."""

    def __init__(self, store: "S3BlobStore", algorithm: str, expected: str | None) -> None:
        self.store = store
        self.hasher = hashlib.new(algorithm)
        self.expected = expected
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.written = 0
        self.parts: _Parts | None = None

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.hasher.update(chunk)
            self.buffer.append(chunk)
            self.buffered += len(chunk)
            self.written += len(chunk)
        if self.buffered >= self.store.part_size:
            if self.parts is None:
                # At the final key (nothing is visible there before the upload is completed, in
                # place(), once the digest checks out), or without a digest under a temporary one.
                key = (self.store.blob_key(self.expected) if self.expected is not None
                       else self.store.session_key(f"m{secrets.token_hex(16)}"))
                self.parts = _Parts(self.store, key, None, [])
            data = b"".join(self.buffer)
            size = self.store.part_size
            for start in range(0, len(data) - size + 1, size):
                self.parts.add(data[start:start + size])
            rest = data[len(data) - len(data) % size:]
            self.buffer, self.buffered = ([rest] if rest else []), len(rest)

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()

    def finish(self) -> S3Staged:
        data = b"".join(self.buffer)
        self.buffer = []
        if self.parts is None:
            return S3Staged(self.store, self.written, data=data)
        if data:
            self.parts.add(data)  # the last part may be short
        self.parts.settle()
        return S3Staged(self.store, self.written, parts=self.parts)

    def abort(self) -> None:
        self.buffer = []
        if self.parts is not None:
            try:
                self.parts.settle()
            except Exception:
                pass
            if self.parts.upload_id is not None:
                self.store._abort(self.parts.key, self.parts.upload_id)


class S3SessionWriter:
    """One chunk of a session: whole parts go to the session's multipart upload, the rest to a
    new tail object. Nothing the recorded state names is changed until the new state is."""

    def __init__(self, store: "S3BlobStore", upload_id: str, state: SessionState, offset: int, hasher: Any | None) -> None:
        self.store = store
        self.upload_id = upload_id
        self.old = state or {}
        self.offset = offset
        self.hasher = hasher
        self.parts = _Parts(store, store.session_key(upload_id), self.old.get("mpu"), self.old.get("parts", []))
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.new_tail: str | None = None
        tail = self.old.get("tail")
        if tail:  # the bytes after the last part: they start the next part
            data = store._get(tail[0])
            if len(data) != tail[1]:
                raise FileNotFoundError(f"tail object {tail[0]} has {len(data)} bytes, not {tail[1]}")
            self.buffer, self.buffered = [data], len(data)
        if self.parts.size + self.buffered != offset:
            raise FileNotFoundError(f"upload {upload_id}: staged {self.parts.size + self.buffered} bytes, recorded {offset}")

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if self.hasher is not None:
                self.hasher.update(chunk)
            self.buffer.append(chunk)
            self.buffered += len(chunk)
        size = self.store.part_size
        if self.buffered >= size:
            data = b"".join(self.buffer)
            for start in range(0, len(data) - size + 1, size):
                self.parts.add(data[start:start + size])
            rest = data[len(data) - len(data) % size:]
            self.buffer, self.buffered = ([rest] if rest else []), len(rest)

    def commit(self) -> SessionState:
        data = b"".join(self.buffer)
        self.buffer = []
        if len(data) >= MIN_PART:  # long enough to be a part of its own
            self.parts.add(data)
            data = b""
        self.parts.settle()
        tail = None
        if data:
            start = self.parts.size
            self.new_tail = self.store.session_key(self.upload_id, f"tail-{start}-{secrets.token_hex(4)}")
            self.store.client.put_object(Bucket=self.store.bucket, Key=self.new_tail, Body=data)
            tail = [self.new_tail, len(data)]
        return {"mpu": self.parts.upload_id, "parts": self.parts.parts, "tail": tail}

    def rollback(self) -> None:
        self.buffer = []
        try:
            self.parts.settle()
        except Exception:
            pass
        if self.new_tail is not None:
            self.store._delete_keys([self.new_tail])
        # Parts uploaded beyond the recorded ones are replaced by the next chunk's (same numbers)
        # or left out of the completed object; a multipart upload the old state does not name
        # is aborted by the purge.

    def superseded(self) -> None:
        old_tail = self.old.get("tail")
        if old_tail and (self.new_tail is None or old_tail[0] != self.new_tail):
            try:
                self.store._delete_keys([old_tail[0]])
            except Exception:
                pass  # the purge removes it with the session


class S3BlobStore:
    kind = "s3"
    shared = True

    def __init__(self, bucket: str, endpoint: str | None = None, region: str = "us-east-1",
                 access_key_id: str | None = None, secret_access_key: str | None = None, path_style: bool = False,
                 prefix: str = "", part_size: int = 8 << 20, presign_ttl: int = 900, max_workers: int = 16) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = max(part_size, MIN_PART)
        self.presign_ttl = presign_ttl
        config = Config(
            region_name=region, signature_version="s3v4",
            # The registry checks every blob's digest itself; signing each payload's sha256 too
            # (botocore's default over plain http) would hash every byte a second time.
            s3={"addressing_style": "path" if path_style else "auto", "payload_signing_enabled": False},
            # Checksums only where the API requires them: newer botocore's default CRC headers
            # and trailers are not understood by every S3-compatible server (Ceph RGW 16).
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=max(64, max_workers * 2),
            connect_timeout=10, read_timeout=300, tcp_keepalive=True,
        )
        session = boto3.session.Session()
        self.client = session.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key_id,
                                     aws_secret_access_key=secret_access_key, config=config)
        self.once = session.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key_id,
                                   aws_secret_access_key=secret_access_key,
                                   config=config.merge(Config(retries={"max_attempts": 1, "mode": "standard"})))
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3-part")
        self._lock = threading.Lock()

    # -- keys -------------------------------------------------------------------------------------
    def blob_key(self, digest: str) -> str:
        d = Digest.parse(digest)  # parsed first: no input can name another key
        return f"{self.prefix}blobs/{d.algorithm}/{d.encoded[:2]}/{d.encoded}"

    def session_key(self, upload_id: str, name: str = "data") -> str:
        if not upload_id.isalnum():
            raise ValueError("invalid upload id")
        return f"{self.prefix}uploads/{upload_id}/{name}"

    # -- the bucket -------------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (`dockyard serve`)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as again:
                if again.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def check_writable(self) -> None:
        """Write, read back and delete a probe object (`dockyard check-config`)."""
        key = f"{self.prefix}dockyard/probe-{secrets.token_hex(6)}"
        payload = b"dockyard write probe"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=payload)
        try:
            if self._get(key) != payload:
                raise OSError(f"s3://{self.bucket}/{key} did not read back what was written")
        finally:
            self._delete_keys([key])

    def owner(self) -> str | None:
        """The installation id the bucket is marked with, or None when it is not marked yet."""
        try:
            return self._get(f"{self.prefix}dockyard/owner").decode()
        except FileNotFoundError:
            return None

    def mark_owner(self, installation: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}dockyard/owner", Body=installation.encode())

    # -- reading ----------------------------------------------------------------------------------
    def stat(self, digest: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self.blob_key(digest))["ContentLength"])
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def _get_object(self, key: str, range_: str | None = None, missing: str | None = None) -> dict[str, Any]:
        """GetObject (of a byte range); FileNotFoundError(`missing`, else the key) when it is not there."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **({"Range": range_} if range_ else {}))  # type: ignore[no-any-return]
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(missing or key) from None
            raise

    def _get(self, key: str, range_: str | None = None) -> bytes:
        body = self._get_object(key, range_)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def read_small(self, digest: str, limit: int) -> bytes:
        if limit <= 0:
            return b""
        try:
            return self._get(self.blob_key(digest), f"bytes=0-{limit - 1}")
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416:
                return b""  # an empty blob
            raise

    def open_range(self, digest: str, offset: int, length: int) -> S3Reader:
        if length == 0:
            if self.stat(digest) is None:
                raise FileNotFoundError(digest)
            return S3Reader(None, 0)
        body = self._get_object(self.blob_key(digest), f"bytes={offset}-{offset + length - 1}", digest)["Body"]
        return S3Reader(body, length)

    def open_stream(self, digest: str) -> BinaryIO:
        return self._get_object(self.blob_key(digest), None, digest)["Body"]  # type: ignore[no-any-return]  (StreamingBody: read(n), close())

    def open_for_cache(self, digest: str, length: int, fill: Callable[[str, int], Any]) -> S3Reader:
        """The first `length` bytes, copied by `fill(digest, size)`'s sink as they are read
        when they are the whole blob (storage/cache.py)."""
        response = self._get_object(self.blob_key(digest), f"bytes=0-{length - 1}", digest)
        total = response.get("ContentRange", "").rpartition("/")[2]
        sink = fill(digest, length) if total == str(length) else None
        return S3Reader(response["Body"], length, sink)

    def redirect_url(self, digest: str) -> str | None:
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.blob_key(digest)}, ExpiresIn=self.presign_ttl))

    # -- deleting and listing ---------------------------------------------------------------------
    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            failed = [e for e in result.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                raise OSError(f"could not delete {len(failed)} object(s), e.g. {failed[0].get('Key')}: {failed[0].get('Message')}")

    def delete_many(self, digests: Iterable[str]) -> None:
        self._delete_keys([self.blob_key(d) for d in digests])

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        root = f"{self.prefix}blobs/"
        for obj in self._list(root):
            parts = obj["Key"][len(root):].split("/")
            if len(parts) == 3:
                yield f"{parts[0]}:{parts[2]}", obj["LastModified"].timestamp()

    # -- writing ----------------------------------------------------------------------------------
    def check_room(self, length: int) -> None:
        """A multipart upload has at most 10,000 parts: 80 GiB with 8 MiB parts."""
        limit = min(MAX_OBJECT, self.part_size * MAX_PARTS)
        if length > limit:
            raise BlobTooLarge(f"Content-Length {length} is more than this store takes ({limit} bytes: 10,000 parts of "
                               "storage.s3.part_size_mib)", {"length": length})

    def new_blob(self, algorithm: str, expected: str | None, size_hint: int | None) -> S3BlobWriter:
        return S3BlobWriter(self, algorithm, expected)

    def session_start(self, upload_id: str) -> SessionState:
        return {"mpu": None, "parts": [], "tail": None}

    def session_append(self, upload_id: str, state: SessionState, offset: int, hasher: Any | None) -> S3SessionWriter:
        return S3SessionWriter(self, upload_id, state, offset, hasher)

    def session_stage(self, upload_id: str, state: SessionState, size: int) -> S3Staged:
        state = state or {}
        parts = _Parts(self, self.session_key(upload_id), state.get("mpu"), state.get("parts", []))
        tail = state.get("tail")
        if not parts.parts:  # shorter than a part: the tail object is the blob
            if tail is None:
                if size:
                    raise FileNotFoundError(upload_id)
                return S3Staged(self, 0, data=b"")
            if self._size(tail[0]) != size:  # cancelled or purged meanwhile
                raise FileNotFoundError(f"upload {upload_id}: its data is gone")
            return S3Staged(self, size, key=tail[0])
        data_key = self.session_key(upload_id)
        if tail is not None:  # the last part may be short
            parts.add(self._get(tail[0]))
            parts.settle()
        try:
            self._complete(data_key, parts)
        except FileNotFoundError:
            pass  # completed already by an earlier try of this commit that failed later on? (checked below)
        if self._size(data_key) != size:
            raise FileNotFoundError(f"upload {upload_id}: its data is gone")
        return S3Staged(self, size, key=data_key)

    def _size(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def session_delete(self, upload_id: str, state: SessionState) -> None:
        """The session's multipart upload and its objects."""
        state = state or {}
        if state.get("mpu"):
            self._abort(self.session_key(upload_id), state["mpu"])
        # Everything under the session's prefix (one listing): the assembled object, the tail,
        # and tails of chunks whose node died or whose commit was never recorded.
        keys = {o["Key"] for o in self._list(self.session_key(upload_id, ""))}
        keys.update([self.session_key(upload_id)] + ([state["tail"][0]] if state.get("tail") else []))
        self._delete_keys(sorted(keys))

    def session_orphans(self, live: set[str], older_than: float) -> int:
        removed = 0
        root = f"{self.prefix}uploads/"
        stale = [o["Key"] for o in self._list(root)
                 if o["Key"][len(root):].split("/")[0] not in live and o["LastModified"].timestamp() < older_than]
        self._delete_keys(stale)
        removed += len(stale)
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for mpu in page.get("Uploads", []):
                key = mpu["Key"]
                if key.startswith(root) and key[len(root):].split("/")[0] in live:
                    continue
                if not (key.startswith(root) or key.startswith(f"{self.prefix}blobs/")):
                    continue
                if mpu["Initiated"].timestamp() >= older_than or self._last_part_at(key, mpu["UploadId"]) >= older_than:
                    continue  # still being written (a long monolithic upload)
                self._abort(key, mpu["UploadId"])
                removed += 1
        return removed

    def sessions_without_data(self, live: set[str]) -> set[str]:
        return set()  # not worth a listing per start: the purge ends such sessions by age

    def _last_part_at(self, key: str, upload_id: str) -> float:
        try:
            parts = self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id).get("Parts", [])
        except ClientError as exc:
            if _not_found(exc):
                return time.time()  # completed or aborted meanwhile: nothing to do
            raise
        return max((p["LastModified"].timestamp() for p in parts), default=0.0)

    # -- multipart helpers ------------------------------------------------------------------------
    def _complete(self, key: str, parts: _Parts) -> None:
        """Complete a multipart upload; FileNotFoundError when it is not there (any more).

        Not through botocore's retries: Ceph RGW answers a completion of an upload that was
        aborted (a session cancelled on another node) with a 500 'completion already in
        progress', which botocore would retry for seconds. Here a failure is retried only while
        the upload still exists."""
        request = {"Bucket": self.bucket, "Key": key, "UploadId": parts.upload_id,
                   "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts.parts]}}
        for attempt in range(COMPLETE_TRIES):
            try:
                self.once.complete_multipart_upload(**request)
                return  # (Ceph RGW answers an empty ETag: nothing is read from the answer)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                if _not_found(exc) or not self._upload_exists(key, parts.upload_id):
                    raise FileNotFoundError(f"multipart upload of {key} is gone") from None
                if status < 500 or attempt == COMPLETE_TRIES - 1:
                    raise
            time.sleep(0.1 * 2 ** attempt)

    def _upload_exists(self, key: str, upload_id: str | None) -> bool:
        try:
            self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if not _not_found(exc):
                raise

    def _copy(self, source: str, target: str, size: int) -> None:
        if size <= COPY_MAX:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})
            return
        part = 1 << 30
        mpu = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)["UploadId"]
        try:
            futures = [self.pool.submit(self.client.upload_part_copy, Bucket=self.bucket, Key=target, UploadId=mpu,
                                        PartNumber=i + 1, CopySource={"Bucket": self.bucket, "Key": source},
                                        CopySourceRange=f"bytes={start}-{min(start + part, size) - 1}")
                       for i, start in enumerate(range(0, size, part))]
            done = [{"PartNumber": i + 1, "ETag": f.result()["CopyPartResult"]["ETag"]} for i, f in enumerate(futures)]
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=target, UploadId=mpu, MultipartUpload={"Parts": done})
        except BaseException:
            self._abort(target, mpu)
            raise
