"""scan/layers.py: compression sniffing, tar walking in stream mode, names, whiteouts, bombs."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tarfile
import tracemalloc

import pytest
import zstandard

from dockyard.scan.layers import (EntryType, LayerSource, Limits, Member, ScanFailed, Unsupported, ancestors,
                                  human_size, normalize_path, walk_layer)
from tests.unit.scan.layerkit import (Dir, File, Hardlink, Opaque, RawName, Symlink, Whiteout, compress, layer,
                                      source, tar_bytes)

LIMITS = Limits(max_layer_bytes=64 << 20, max_file_bytes=1 << 20)


def walk(blob: bytes, limits: Limits = LIMITS, check=lambda: None) -> tuple[list[Member], list[str]]:
    notes: list[str] = []
    with contextlib.closing(walk_layer(source(blob), limits, check, notes)) as members:
        return list(members), notes


def entries(blob: bytes) -> list[tuple[str, EntryType]]:
    return [(m.path, m.type) for m in walk(blob)[0]]


SAMPLE = [Dir("etc"), File("etc/os-release", b"ID=alpine\n"), Symlink("bin/sh", "busybox"),
          Hardlink("bin/ash", "bin/sh"), File("./usr/bin/tool", b"x", mode=0o755)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_reads_the_same_entries(compression: str) -> None:
    assert entries(layer(SAMPLE, compression)) == [
        ("etc", EntryType.DIR), ("etc/os-release", EntryType.FILE), ("bin/sh", EntryType.SYMLINK),
        ("bin/ash", EntryType.HARDLINK), ("usr/bin/tool", EntryType.FILE)]


def test_compression_is_told_by_magic_not_media_type() -> None:
    blob = layer(SAMPLE, "zstd")
    lying = LayerSource(digest="sha256:x", media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                        size=len(blob), open=lambda: io.BytesIO(blob))
    with contextlib.closing(walk_layer(lying, LIMITS, lambda: None, [])) as members:
        assert len(list(members)) == len(SAMPLE)


def test_gzip_with_several_members_is_one_stream() -> None:
    tar = tar_bytes(SAMPLE)
    blob = gzip.compress(tar[:1024]) + gzip.compress(tar[1024:])
    assert len(entries(blob)) == len(SAMPLE)


def test_zstd_with_several_frames_is_one_stream() -> None:
    tar = tar_bytes(SAMPLE)
    cctx = zstandard.ZstdCompressor()
    assert len(entries(cctx.compress(tar[:1024]) + cctx.compress(tar[1024:]))) == len(SAMPLE)


def test_member_metadata() -> None:
    members, _ = walk(layer(SAMPLE))
    tool = members[-1]
    assert (tool.size, tool.mode & 0o777) == (1, 0o755)
    assert members[2].target == "busybox"
    assert members[3].target == "bin/sh"


@pytest.mark.parametrize("blob", [b"", tar_bytes([]), compress(tar_bytes([])), compress(tar_bytes([]), "zstd")],
                         ids=["empty-blob", "empty-tar", "empty-tar-gzip", "empty-tar-zstd"])
def test_empty_layers_have_no_entries(blob: bytes) -> None:
    assert walk(blob) == ([], [])


@pytest.mark.parametrize("blob", [
    json.dumps({"schemaVersion": 2}).encode(),
    gzip.compress(b'{"artifact": true}' * 100),
    zstandard.ZstdCompressor().compress(b"helm chart? " * 100),
    b"\x89PNG\r\n\x1a\n" + bytes(600),
    b"BZh91AY&SY" + bytes(600),
], ids=["json", "gzip-json", "zstd-text", "png", "bzip2"])
def test_not_a_tar_is_unsupported(blob: bytes) -> None:
    with pytest.raises(Unsupported, match="not a tar archive"):
        walk(blob)


def test_a_broken_gzip_header_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        walk(b"\x1f\x8b\x08\xff" + bytes(100))


def test_a_truncated_layer_fails_the_scan() -> None:
    blob = layer([File("big", bytes(range(256)) * 4000)])
    with pytest.raises(ScanFailed, match="corrupt"):
        walk(blob[: len(blob) // 2])


def test_a_truncated_layer_fails_while_a_member_is_read() -> None:
    blob = layer([File("var/lib/dpkg/status", bytes(range(256)) * 4000)])
    with contextlib.closing(walk_layer(source(blob[: len(blob) // 2]), LIMITS, lambda: None, [])) as members:
        member = next(members)
        with pytest.raises(ScanFailed, match="corrupt"):
            member.read(1 << 20)


@pytest.mark.parametrize(("name", "expected"), [
    ("etc/passwd", "etc/passwd"), ("./etc/passwd", "etc/passwd"), ("/etc/passwd", "etc/passwd"),
    ("a//b/./c/", "a/b/c"), ("./", ""), ("../etc/passwd", None), ("a/../../b", None), ("a/..", None),
    ("a\x00b", None), ("x" * 300, None), ("a/" * 2100, None),
])
def test_normalize_path(name: str, expected: str | None) -> None:
    assert normalize_path(name) == expected


def test_ancestors() -> None:
    assert list(ancestors("a/b/c")) == ["", "a", "a/b"]
    assert list(ancestors("file")) == [""]


def test_unsafe_names_are_skipped_with_a_note() -> None:
    members, notes = walk(layer([RawName("../../etc/shadow", b"x"), RawName("/abs/file", b"y"),
                                 RawName("a/../../escape", b"z"), File("ok", b"ok")]))
    assert [m.path for m in members] == ["abs/file", "ok"]
    assert len(notes) == 1 and "2 entries with unsafe names" in notes[0]


def test_whiteouts_and_opaque_directories() -> None:
    members, _ = walk(layer([Whiteout("usr/share/doc"), Whiteout("top"), Opaque("etc/apt"), Opaque("")]))
    assert [(m.path, m.type) for m in members] == [
        ("usr/share/doc", EntryType.WHITEOUT), ("top", EntryType.WHITEOUT),
        ("etc/apt", EntryType.OPAQUE), ("", EntryType.OPAQUE)]


def test_reading_a_member() -> None:
    data = bytes(range(256)) * 100
    with contextlib.closing(walk_layer(source(layer([File("a", data), File("b", data), File("c", data)])),
                                       LIMITS, lambda: None, [])) as members:
        a = next(members)
        assert a.head(4) == data[:4]
        assert a.read(len(data)) == data  # the head was not consumed
        b = next(members)
        assert b.read(len(data) - 1) is None  # over the limit: not read
        c = next(members)
        spooled = c.spool(1 << 20)
        assert spooled is not None
        with spooled:
            assert spooled.read() == data
        assert list(members) == []


def test_a_member_written_to_disk_is_deleted_after() -> None:
    with contextlib.closing(walk_layer(source(layer([File("db", b"sqlite?")])), LIMITS, lambda: None, [])) as members:
        member = next(members)
        with member.to_disk(100) as filename:
            assert filename is not None
            with open(filename, "rb") as fh:
                assert fh.read() == b"sqlite?"
        assert not os.path.exists(filename)


def _zero_file_layer(size: int, compression: str = "gzip") -> bytes:
    """A layer holding one file of `size` zero bytes, compressed without holding it."""
    info = tarfile.TarInfo("bomb")
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    chunk = bytes(1 << 20)
    if compression == "gzip":
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
            gz.write(header)
            for _ in range(size // len(chunk)):
                gz.write(chunk)
            gz.write(bytes(size % len(chunk) + 1024))
        return out.getvalue()
    cctx = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [cctx.compress(header)]
    parts += [cctx.compress(chunk) for _ in range(size // len(chunk))]
    parts += [cctx.compress(bytes(size % len(chunk) + 1024)), cctx.flush()]
    return b"".join(parts)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_bomb_stops_at_the_limit_without_being_held(compression: str) -> None:
    blob = _zero_file_layer(64 << 20, compression)
    assert len(blob) < 1 << 20  # 64 MiB of zeros compress to almost nothing
    limits = Limits(max_layer_bytes=4 << 20, max_file_bytes=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ScanFailed, match=r"expands past 4 MiB \(scan.max_layer_bytes\)") as caught:
            walk(blob, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source(blob).digest in str(caught.value)
    assert peak < 8 << 20


def test_a_bomb_read_as_a_member_stops_at_the_limit_too() -> None:
    limits = Limits(max_layer_bytes=4 << 20, max_file_bytes=64 << 20)
    with contextlib.closing(walk_layer(source(_zero_file_layer(16 << 20)), limits, lambda: None, [])) as members:
        member = next(members)
        with pytest.raises(ScanFailed, match="max_layer_bytes"):
            member.read(64 << 20)


def test_check_runs_every_few_megabytes_and_can_cancel() -> None:
    blob = _zero_file_layer(40 << 20)
    calls = []
    walk(blob, check=lambda: calls.append(1))
    assert len(calls) >= 4

    class Cancelled(Exception):
        pass

    def cancel() -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        walk(blob, check=cancel)


def _raw_header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def test_a_huge_pax_header_is_refused_before_tarfile_reads_it() -> None:
    blob = _raw_header("././@PaxHeader", tarfile.XHDTYPE, 512 << 20) + bytes(4096)
    with pytest.raises(ScanFailed, match="metadata entry of 512 MiB"):
        walk(blob)


def test_a_huge_gnu_long_name_is_refused() -> None:
    blob = _raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 64 << 20) + bytes(4096)
    with pytest.raises(ScanFailed, match="metadata entry"):
        walk(blob)


def test_gnu_sparse_entries_are_refused() -> None:
    info = tarfile.TarInfo("sparse")
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 0
    buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    buf[482] = 0  # not extended
    buf[148:156] = b"        "
    buf[148:155] = b"%06o\x00" % sum(buf)
    with pytest.raises(ScanFailed, match="sparse"):
        walk(bytes(buf) + bytes(1024))


def test_human_size() -> None:
    assert (human_size(8 << 30), human_size(1536 << 20), human_size(100)) == ("8 GiB", "1.5 GiB", "100 bytes")


def test_the_blob_stream_is_closed() -> None:
    closed = []

    class Tracked(io.BytesIO):
        def close(self) -> None:
            closed.append(True)
            super().close()

    blob = layer(SAMPLE)
    src = LayerSource(digest="sha256:x", media_type="", size=len(blob), open=lambda: Tracked(blob))
    with contextlib.closing(walk_layer(src, LIMITS, lambda: None, [])) as members:
        next(members)
    assert closed == [True]
