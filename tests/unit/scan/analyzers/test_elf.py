"""scan/analyzers/elf.py: which executables are read, and how their sections are found."""

from __future__ import annotations

import io
import struct

import pytest

from dockyard.scan.analyzers import elf, wanted
from dockyard.scan.layers import Limits
from tests.unit.scan.layerkit import elf64, go_binary, rust_binary

LIMITS = Limits(max_layer_bytes=1 << 30, max_file_bytes=1 << 26)


@pytest.mark.parametrize(("path", "mode", "wanted_"), [
    ("usr/local/bin/app", 0o755, True), ("opt/app/server", 0o750, True), ("usr/bin/tool", 0o644, True),
    ("bin/busybox", 0o644, True), ("opt/app/lib.so", 0o644, False), ("app/data.bin", 0o600, False),
])
def test_candidates_are_executables_or_in_bin_directories(path: str, mode: int, wanted_: bool) -> None:
    want = wanted(path, mode)
    assert (want is not None and want.analyzer == "elf") is wanted_
    if want is not None:
        assert want.magic == b"\x7fELF" and not want.by_name


def parse(data: bytes):
    return elf.parse("usr/bin/x", io.BytesIO(data), LIMITS)


def test_go_and_rust_binaries() -> None:
    assert [p.name for p in parse(go_binary(deps=[("golang.org/x/net", "v0.17.0")])).packages] == [
        "example.com/app", "golang.org/x/net", "stdlib"]
    assert [p.name for p in parse(rust_binary([{"name": "serde", "version": "1.0.0"}])).packages] == ["serde"]


def test_an_elf_without_the_markers_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elf, "ELFFile", None)  # would raise if used
    assert parse(elf64({".rodata": b"plain C program"})).packages == ()


def test_markers_split_across_chunks_are_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elf, "_CHUNK", 7)
    assert elf.mentions(io.BytesIO(b"0123456789\xff Go buildinf:tail"))
    assert not elf.mentions(io.BytesIO(b"0123456789\xff Go buildin"))


def _patch_section(binary: bytes, name: str, **fields: int) -> bytes:
    """Rewrites fields of one section header of an elf64() file."""
    data = bytearray(binary)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    str_offset, = struct.unpack_from("<Q", data, shoff + 64 * shstrndx + 24)
    for i in range(shnum):
        at = shoff + 64 * i
        name_at, = struct.unpack_from("<I", data, at)
        if data[str_offset + name_at:].split(b"\x00", 1)[0] == name.encode():
            layout = {"sh_type": (4, "<I"), "sh_flags": (8, "<Q"), "sh_offset": (24, "<Q"), "sh_size": (32, "<Q")}
            for key, value in fields.items():
                offset, fmt = layout[key]
                struct.pack_into(fmt, data, at + offset, value)
    return bytes(data)


@pytest.mark.parametrize("fields", [
    {"sh_type": 8, "sh_size": 1 << 40},  # SHT_NOBITS: pyelftools would allocate that many zeros
    {"sh_flags": 0x802},  # SHF_COMPRESSED: pyelftools would inflate to whatever size is claimed
    {"sh_size": 1 << 40},
    {"sh_offset": 1 << 40},
])
def test_crafted_section_headers_are_not_read(fields: dict[str, int]) -> None:
    assert parse(_patch_section(go_binary(), ".go.buildinfo", **fields)).packages == ()


def test_a_broken_section_table_is_a_note() -> None:
    binary = bytearray(go_binary())
    struct.pack_into("<Q", binary, 0x28, len(binary) - 10)  # e_shoff near the end
    found = parse(bytes(binary))
    assert found.packages == () and "unreadable ELF section table" in found.notes[0]
