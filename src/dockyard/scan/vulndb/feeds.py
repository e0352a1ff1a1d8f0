"""`dockyard vulndb update`: download each feed, unpack it safely, import it.

A feed is a name and a URL (settings `scan.feeds`, else `DEFAULT_FEEDS`). The URL serves an
archive (.zip, .tar, .tar.gz, .tar.zst) or a single advisory file, possibly gzip'd (Alpine's
secdb JSON, Debian's tracker JSON). Each download goes to a temporary directory, is unpacked under `<tmp>/<feed name>/`
and read with the same layout detection as `vulndb import`; every source found in it is named
after the feed ("osv:osv-pypi"). All feeds that downloaded are then written in one atomic
replacement of the database (store.write_sources); a feed that fails is reported and leaves its
previous records in place.

Unpacking never trusts the archive: members with absolute paths or `..`, links and device
files are refused (the whole feed fails), and the bytes written and the number of members are
capped (`MAX_UNPACKED_BYTES`, `MAX_MEMBERS`), as is the download (`MAX_DOWNLOAD_BYTES`).
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlparse

import httpx

from dockyard.scan.vulndb.layout import SourceRead, read_tree
from dockyard.scan.vulndb.store import write_sources

_OSV = "https://osv-vulnerabilities.storage.googleapis.com/{}/all.zip"
_ALPINE = "https://secdb.alpinelinux.org/v{}/{}.json"

DEFAULT_FEEDS: dict[str, str] = {
    "osv-pypi": _OSV.format("PyPI"),  # PYSEC and GHSA records
    "osv-npm": _OSV.format("npm"),
    "osv-go": _OSV.format("Go"),
    "osv-maven": _OSV.format("Maven"),
    "osv-almalinux": _OSV.format("AlmaLinux"),
    "osv-rocky": _OSV.format("Rocky%20Linux"),
    "osv-ubuntu": _OSV.format("Ubuntu"),  # Ubuntu's CVE tracker, as OSV
    "rustsec": "https://github.com/rustsec/advisory-db/archive/refs/heads/main.tar.gz",
    "debian": "https://security-tracker.debian.org/tracker/data/json",
    "wolfi": "https://packages.wolfi.dev/os/security.json",
    **{f"alpine-{v}-{repo}": _ALPINE.format(v, repo) for v in ("3.19", "3.20", "3.21", "3.22")
       for repo in ("main", "community")},
}

MAX_DOWNLOAD_BYTES = 2 << 30
MAX_UNPACKED_BYTES = 4 << 30
MAX_MEMBERS = 2_000_000
_CHUNK = 1 << 20


class UnsafeArchive(ValueError):
    """An archive member that would land outside the target, or is not a plain file."""


@dataclass(frozen=True, slots=True)
class FeedResult:
    name: str
    url: str
    ok: bool
    error: str | None
    sources: tuple[SourceRead, ...]
    seconds: float


def _download(client: httpx.Client, url: str, into: Path) -> Path:
    name = PurePosixPath(urlparse(url).path).name or "feed"
    target = into / name
    size = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        with target.open("wb") as fh:
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                fh.write(chunk)
    return target


def _safe_target(root: Path, member: str) -> Path:
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UnsafeArchive(f"unsafe member path {member!r}")
    target = (root / Path(*path.parts)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafeArchive(f"unsafe member path {member!r}")
    return target


def _copy(src: IO[bytes], dst: Path, budget: list[int]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("wb") as out:
        while chunk := src.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UnsafeArchive(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            out.write(chunk)


def _unzip(archive: Path, into: Path, budget: list[int]) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise UnsafeArchive("too many members")
        for info in members:
            mode = info.external_attr >> 16
            if mode and (mode & 0o170000) not in (0, 0o100000, 0o040000):
                raise UnsafeArchive(f"{info.filename!r} is not a plain file")
            target = _safe_target(into, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                _copy(src, target, budget)


def _untar(archive: Path, into: Path, budget: list[int]) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for count, member in enumerate(tf):
            if count >= MAX_MEMBERS:
                raise UnsafeArchive("too many members")
            if member.type in (tarfile.XGLTYPE, tarfile.XHDTYPE):
                continue
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(f"{member.name!r} is not a plain file")
            target = _safe_target(into, member.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            src = tf.extractfile(member)
            if src is not None:
                with src:
                    _copy(src, target, budget)


def _decompressed(archive: Path, magic: bytes, budget: list[int]) -> Path | None:
    """A gzip'd or zstd'd file that is not a tar (Red Hat's `.tar.zst`, a `.json.gz`),
    decompressed next to it; None for anything else."""
    is_zstd = magic.startswith(b"\x28\xb5\x2f\xfd")
    if not is_zstd and not (magic.startswith(b"\x1f\x8b") and not tarfile.is_tarfile(archive)):
        return None
    stem = archive.name.rsplit(".", 1)[0] if "." in archive.name else archive.name + ".out"
    target = archive.with_name(stem)
    with archive.open("rb") as raw:
        if is_zstd:
            import zstandard  # a dependency already (layers); imported where needed

            with zstandard.ZstdDecompressor().stream_reader(raw) as src:
                _copy(src, target, budget)
        else:
            with gzip.GzipFile(fileobj=raw) as src:
                _copy(src, target, budget)
    archive.unlink()
    return target


def unpack(archive: Path, into: Path) -> None:
    """Unpack a .zip, .tar, .tar.gz or .tar.zst archive under `into`, refusing anything unsafe;
    any other file (a secdb or tracker JSON, compressed or not) is put there as it is."""
    into.mkdir(parents=True, exist_ok=True)
    budget = [MAX_UNPACKED_BYTES]
    while True:
        with archive.open("rb") as fh:
            magic = fh.read(4)
        plain = _decompressed(archive, magic, budget)
        if plain is None:
            break
        archive = plain
    if magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        _unzip(archive, into, budget)
    elif tarfile.is_tarfile(archive):
        _untar(archive, into, budget)
    else:
        name = archive.name
        if "." not in name and magic[:1] in (b"{", b"["):  # .../tracker/data/json
            name += ".json"
        shutil.move(str(archive), into / name)


def fetch(feeds: Mapping[str, str], workdir: Path, client: httpx.Client) -> list[FeedResult]:
    """Download, unpack and read each feed under `workdir`; no database write."""
    results = []
    for name, url in feeds.items():
        started = time.perf_counter()
        try:
            downloads = workdir / "downloads" / name
            downloads.mkdir(parents=True)
            archive = _download(client, url, downloads)
            tree_dir = workdir / "feeds" / name
            unpack(archive, tree_dir)
            tree = read_tree([tree_dir], name=name)
            for source in tree.sources.values():
                source.path = url
            sources = tuple(tree.sources.values())
            results.append(FeedResult(name, url, True, None, sources, time.perf_counter() - started))
        except (httpx.HTTPError, OSError, ValueError, zipfile.BadZipFile, tarfile.TarError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            results.append(FeedResult(name, url, False, error, (), time.perf_counter() - started))
    return results


def update(db_path: Path, feeds: Mapping[str, str] | None = None,
           client: httpx.Client | None = None) -> list[FeedResult]:
    """Fetch every feed (DEFAULT_FEEDS when `feeds` is empty) and write what was read into the
    database at `db_path`, atomically. Returns one result per feed."""
    feeds = dict(feeds or DEFAULT_FEEDS)
    own = client is None
    client = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0),
                                    headers={"User-Agent": "dockyard-vulndb"})
    try:
        # Next to the database when its directory exists: the same filesystem, usually the roomiest.
        parent = Path(db_path).parent
        with tempfile.TemporaryDirectory(prefix="dockyard-vulndb-", dir=parent if parent.exists() else None) as tmp:
            results = fetch(feeds, Path(tmp), client)
            sources = [s for res in results for s in res.sources]
            if sources:
                write_sources(Path(db_path), sources)
            return results
    finally:
        if own:
            client.close()
