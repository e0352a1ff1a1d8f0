"""scan/analyzers/golang.py"""

from __future__ import annotations

import pytest

from dockyard.scan.analyzers import golang
from dockyard.scan.model import GO
from tests.unit.scan.layerkit import go_buildinfo, go_modinfo

BIN = "usr/local/bin/app"


def packages(section: bytes) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in golang.parse(BIN, section).packages]


def test_modules_main_and_stdlib() -> None:
    section = go_buildinfo("go1.21.3", go_modinfo(("example.com/app", "v1.2.3"), [
        ("golang.org/x/net", "v0.17.0"),
        ("github.com/old/lib", "v1.0.0", "github.com/fork/lib", "v1.0.1-fix"),
        ("github.com/local/lib", "v0.1.0", "../lib", ""),
    ]))
    assert packages(section) == [("example.com/app", "v1.2.3"), ("golang.org/x/net", "v0.17.0"),
                                 ("github.com/fork/lib", "v1.0.1-fix"), ("stdlib", "v1.21.3")]
    assert {p.type for p in golang.parse(BIN, section).packages} == {GO}


def test_a_local_build_is_devel_and_a_replaced_main_module() -> None:
    assert packages(go_buildinfo("go1.22.0", go_modinfo(("example.com/app", "(devel)"), []))) == [
        ("example.com/app", "devel"), ("stdlib", "v1.22.0")]


def test_without_modules_only_stdlib() -> None:
    # GOPATH builds (Debian's Go packages): no module info at all.
    assert packages(go_buildinfo("go1.19.8", "")) == [("stdlib", "v1.19.8")]


@pytest.mark.parametrize(("toolchain", "expected"), [
    ("go1.21.3", "v1.21.3"), ("go1.22rc1", "v1.22rc1"), ("go1.21.3 X:boringcrypto", "v1.21.3"),
    ("devel go1.23-abcdef", None), ("", None), ("gox", None),
])
def test_stdlib_version(toolchain: str, expected: str | None) -> None:
    assert golang.stdlib_version(toolchain) == expected


def test_pre_118_binaries_are_noted() -> None:
    found = golang.parse(BIN, go_buildinfo("go1.16", "", inline=False))
    assert found.packages == () and "before Go 1.18" in found.notes[0]


def test_the_header_is_found_at_16_byte_alignment_only() -> None:
    section = go_buildinfo("go1.21.3", "")
    misaligned = b"\x00" * 3 + golang.MAGIC + b"\x08\x02" + b"\x00" * 11  # a literal in rodata, say
    padded = misaligned + b"\x00" * (-len(misaligned) % 16) + section
    assert golang.find_header(padded) == 32
    assert packages(padded) == [("stdlib", "v1.21.3")]


@pytest.mark.parametrize("section", [b"", b"\xff Go buildinf:\x08\x02" + b"\x00" * 16 + b"\xff" * 12,
                                     b"\xff Go buildinf:\x08\x02" + b"\x00" * 16 + b"\x7f" + b"go"])
def test_malformed_build_info_is_a_note(section: bytes) -> None:
    found = golang.parse(BIN, section)
    assert found.packages == () and found.notes
