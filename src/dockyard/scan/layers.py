"""Reading one image layer as a stream of filesystem entries.

A layer blob is a tar archive, plain or compressed with gzip or zstd. Its compression is told by
its first bytes, never by the manifest's media type (which anyone pushing can get wrong); a blob
that is none of these, or that decompresses to something other than tar, is `Unsupported` (an
OCI artifact, a Helm chart, an SBOM…).

The blob is read once, front to back: the tar is walked in stream mode, and an entry's content
can only be read while the walk stands on that entry (`Member.read`, `Member.spool`,
`Member.to_disk`). Nothing here holds more than one file in memory, and that file is bounded by
`Limits.max_file_bytes`; bigger content goes to a temporary file or is not read at all.

Bombs: every decompressed byte is counted (`_Counted`), and past `Limits.max_layer_bytes` the
walk stops with `ScanFailed`, so a gzip or zstd bomb is expanded only up to the limit and never
held. tarfile itself reads some metadata wholly into memory (GNU long names, pax headers, GNU
sparse maps): `_GuardedTarInfo` refuses those when absurdly large before tarfile reads them.

Names: entries are given with normalised paths ("etc/os-release": no leading "./" or "/", no
"." components); a name with a ".." component, a NUL, or of absurd length is skipped (and
counted in a note), so that no entry can claim a path outside the image's root. OCI whiteouts
are interpreted here: `.wh.NAME` becomes a `WHITEOUT` of NAME and `.wh..wh..opq` an `OPAQUE`
entry for its directory; applying them across layers is the inventory's job.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gzip
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
SPOOL_MEMORY_BYTES = 16 << 20  # a spooled file past this goes to disk
CHECK_EVERY_BYTES = 8 << 20  # how often (in decompressed bytes) the caller's check() runs
MAX_METADATA_BYTES = 1 << 20  # largest GNU long name / pax header tarfile may read into memory
MAX_PATH_CHARS = 4096  # PATH_MAX
MAX_NAME_BYTES = 255  # NAME_MAX
_READ_CHUNK = 1 << 20
_TAR_BUFSIZE = 64 << 10  # tarfile copies its buffer at each header read: keep it modest


class ScanFailed(Exception):
    """The scan of this image cannot finish (a bomb, a corrupt blob). str() is for users."""


class Unsupported(Exception):
    """The blob is not a container filesystem layer. str() is for users."""


@dataclass(frozen=True)
class LayerSource:
    digest: str  # as the manifest lists it
    media_type: str
    size: int
    open: Callable[[], BinaryIO]  # a fresh stream of the stored (compressed) blob, read sequentially


@dataclass(frozen=True)
class Limits:
    max_layer_bytes: int  # uncompressed bytes of one layer; past it → ScanFailed
    max_file_bytes: int  # largest single file read (package db, binary, archive); bigger → skipped + a note
    max_archive_depth: int = 3  # nested jars


class EntryType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"  # devices, fifos
    WHITEOUT = "whiteout"  # `path` (file or directory) is deleted from the layers below
    OPAQUE = "opaque"  # everything below `path` (a directory) in the layers below is hidden


def human_size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def normalize_path(name: str) -> str | None:
    """The entry name as a path relative to the image's root, or None for a name that must be
    ignored: one with a ".." component (path traversal), a NUL, or absurd length. The root
    itself ("./") is "" (its entry is a directory)."""
    if "\x00" in name or len(name) > MAX_PATH_CHARS:
        return None
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == ".." or len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            return None
        parts.append(part)
    return "/".join(parts)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def ancestors(path: str) -> Iterator[str]:
    """The directories above `path`, from the root ("") down: "a/b/c" → "", "a", "a/b"."""
    yield ""
    start = 0
    while (i := path.find("/", start)) != -1:
        yield path[:i]
        start = i + 1


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self._prefix = self._prefix + self._rest.read(), b""
            return data
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data + self._rest.read(size - len(data)) if len(data) < size else data
        return self._rest.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Counted:
    """Counts the decompressed bytes read through it: past the limit, ScanFailed; every few MB,
    the caller's check() (which may raise to cancel the scan)."""

    def __init__(self, raw: IO[bytes], digest: str, limit: int, check: Callable[[], None]) -> None:
        self._raw = raw
        self._digest = digest
        self._limit = limit
        self._check = check
        self.count = 0
        self._next_check = CHECK_EVERY_BYTES

    def read(self, size: int = -1) -> bytes:
        # Never read unbounded: a bomb would be expanded into memory before it could be counted.
        data = self._raw.read(_READ_CHUNK if size is None or size < 0 else min(size, self._limit + 1))
        self.count += len(data)
        if self.count > self._limit:
            raise ScanFailed(f"layer {self._digest} expands past {human_size(self._limit)} (scan.max_layer_bytes)")
        if self.count >= self._next_check:
            self._next_check = self.count + CHECK_EVERY_BYTES
            self._check()
        return data


class _GuardedTarInfo(tarfile.TarInfo):
    """tarfile reads a GNU long name, a pax header or a sparse map wholly into memory, of whatever
    size the header claims. Refuse the absurd ones first (tarfile's hook for subclasses)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                         tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE) and self.size > MAX_METADATA_BYTES:
            raise _BadTar(f"a tar metadata entry of {human_size(self.size)}")
        if self.type == tarfile.GNUTYPE_SPARSE:
            # Its map can go on for any number of blocks; container tools never write sparse entries.
            raise _BadTar("a GNU sparse entry")
        return super()._proc_member(tarfile_)  # type: ignore[misc]

    def _proc_gnusparse_10(self, next_: tarfile.TarInfo, pax_headers: dict[str, str],
                           tarfile_: tarfile.TarFile) -> None:
        raise _BadTar("a GNU sparse entry")


class _BadTar(Exception):
    pass


# What a truncated or corrupt blob raises from tarfile and the decompressors.
_CORRUPT = (tarfile.TarError, OSError, EOFError, zlib.error, zstandard.ZstdError)


def _is_tar_header(block: bytes) -> bool:
    """True for a valid first tar header, or the zero blocks of an empty archive."""
    if len(block) < 512:
        return False
    if block == bytes(512):
        return True
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:512] if b > 127)
    return stored in (unsigned, signed)


def _decompressed(blob: IO[bytes]) -> IO[bytes]:
    magic = blob.read(4)
    stream: IO[bytes] = _Prefixed(magic, blob)  # type: ignore[assignment]
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if magic == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)  # type: ignore[return-value]
    return stream


@dataclass
class Member:
    """One entry of the layer, valid only while the walk stands on it."""

    path: str
    type: EntryType
    size: int
    mode: int
    target: str | None  # HARDLINK: the normalised path it links to; SYMLINK: the target as written
    _layer: str = ""  # the layer's digest, for messages
    _opener: Callable[[], IO[bytes] | None] | None = None  # opened on first read: most files are never read
    _fh: IO[bytes] | None = None
    _head: bytes = b""

    def _read_some(self, n: int) -> bytes:
        if self._fh is None and self._opener is not None:
            self._fh, self._opener = self._opener(), None
        if self._fh is None:
            return b""
        try:
            return self._fh.read(n)
        except _CORRUPT as exc:  # raised here, in the reader's code, not in walk_layer's
            raise ScanFailed(f"layer {self._layer} is corrupt: {exc}") from None

    def head(self, n: int) -> bytes:
        """The first n bytes (fewer for a shorter file); reading them does not consume them."""
        if len(self._head) < n:
            self._head += self._read_some(n - len(self._head))
        return self._head[:n]

    def _chunks(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        while chunk := self._read_some(_READ_CHUNK):
            yield chunk

    def read(self, limit: int) -> bytes | None:
        """The whole content, or None when the file is bigger than `limit`."""
        if self.type is not EntryType.FILE or self.size > limit:
            return None
        return b"".join(self._chunks())

    def spool(self, limit: int) -> IO[bytes] | None:
        """The content in a seekable temporary file (in memory up to 16 MiB, on disk past it),
        positioned at 0; None when the file is bigger than `limit`. The caller closes it."""
        if self.type is not EntryType.FILE or self.size > limit:
            return None
        spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
        try:
            for chunk in self._chunks():
                spooled.write(chunk)
        except BaseException:
            spooled.close()
            raise
        spooled.seek(0)
        return spooled  # type: ignore[return-value]

    @contextlib.contextmanager
    def to_disk(self, limit: int) -> Iterator[str | None]:
        """The content in a named temporary file (for readers that need a path, like sqlite3),
        deleted on exit whatever happens; None when the file is bigger than `limit`."""
        if self.type is not EntryType.FILE or self.size > limit:
            yield None
            return
        fd, path = tempfile.mkstemp(prefix="dockyard-scan-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self._chunks():
                    out.write(chunk)
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _entry(info: tarfile.TarInfo) -> tuple[str | None, EntryType, str | None]:
    path = normalize_path(info.name)
    if path is None or (not path and not info.isdir()):
        return None, EntryType.OTHER, None  # unsafe, or a non-directory claiming to be the root
    base = path.rpartition("/")[2]
    if base == OPAQUE_MARKER:
        return parent_of(path), EntryType.OPAQUE, None
    if base.startswith(WHITEOUT_PREFIX):
        name = base[len(WHITEOUT_PREFIX):]
        if not name or name in (".", ".."):
            return None, EntryType.OTHER, None
        parent = parent_of(path)
        return (f"{parent}/{name}" if parent else name), EntryType.WHITEOUT, None
    if info.isreg():
        return path, EntryType.FILE, None
    if info.isdir():
        return path, EntryType.DIR, None
    if info.issym():
        return path, EntryType.SYMLINK, info.linkname
    if info.islnk():
        target = normalize_path(info.linkname)
        return (path, EntryType.HARDLINK, target) if target else (None, EntryType.OTHER, None)
    return path, EntryType.OTHER, None


def walk_layer(source: LayerSource, limits: Limits, check: Callable[[], None],
               notes: list[str]) -> Iterator[Member]:
    """The layer's entries in archive order. Close the generator (or exhaust it) to release the
    blob stream. Raises Unsupported (not a tar layer) and ScanFailed (past max_layer_bytes, or a
    corrupt blob); appends to `notes` what it skipped."""
    blob = source.open()
    try:
        counted = _Counted(_decompressed(blob), source.digest, limits.max_layer_bytes, check)
        try:
            first = b""
            while len(first) < 512 and (more := counted.read(512 - len(first))):
                first += more  # decompressors may return short reads
        except _CORRUPT as exc:
            raise Unsupported(f"layer {source.digest} ({source.media_type}) is not a tar archive: {exc}") from None
        if not first:
            return  # an empty blob: an empty layer
        if not _is_tar_header(first):
            raise Unsupported(f"layer {source.digest} ({source.media_type}) is not a tar archive (plain, gzip or "
                              "zstd): not a container filesystem layer")
        stream = _Prefixed(first, counted)  # type: ignore[arg-type]
        skipped = 0
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFSIZE,  # type: ignore[call-overload]
                              tarinfo=_GuardedTarInfo) as tar:
                while (info := tar.next()) is not None:
                    tar.members.clear()  # stream mode still remembers every member: a million of them is ~0.5 GiB
                    path, kind, target = _entry(info)
                    if path is None:
                        skipped += 1
                        continue
                    member = Member(path=path, type=kind, size=max(info.size, 0), mode=info.mode, target=target,
                                    _layer=source.digest)
                    if kind is EntryType.FILE:
                        member._opener = functools.partial(tar.extractfile, info)
                    try:
                        yield member
                    finally:
                        member._opener = None
                        if member._fh is not None:
                            member._fh.close()
                            member._fh = None
        except _BadTar as exc:
            raise ScanFailed(f"layer {source.digest} holds {exc}, which this scanner does not read") from None
        except _CORRUPT as exc:
            raise ScanFailed(f"layer {source.digest} is corrupt: {exc}") from None
        if skipped:
            notes.append(f"layer {source.digest}: {skipped} entries with unsafe names (a '..' component, a NUL or "
                         "an absurd length) ignored")
    finally:
        blob.close()
