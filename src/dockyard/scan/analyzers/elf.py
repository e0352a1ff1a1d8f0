"""Executables: which ELF binaries carry a package list (Go build info, cargo auditable data).

Any regular file with an execute bit, or in a bin directory, whose content starts with the ELF
magic is a candidate; the inventory spools it (it needs random access: the section header table
sits at the end of the file) and hands it here. Most executables of an image are C programs
with neither section, so the spooled bytes are first searched for the two markers (the build
info magic, the `.dep-v0` section name), which is a C-speed scan; only files that mention one
are parsed with pyelftools, and only the section table: section contents are read here, after
checking their size, because pyelftools would allocate whatever size a crafted header claims
(SHT_NOBITS, compressed sections).
"""

from __future__ import annotations

from typing import IO

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from dockyard.scan.analyzers import Findings, Read, Want, cargo, golang
from dockyard.scan.layers import Limits

MAGIC = b"\x7fELF"
BIN_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/local/bin/", "usr/local/sbin/")
GO_SECTION = ".go.buildinfo"
MARKERS = (golang.MAGIC, cargo.SECTION.encode())
MAX_SECTION_BYTES = 16 << 20
_SHF_COMPRESSED = 0x800
_CHUNK = 1 << 20


def want(path: str, mode: int) -> Want | None:
    return _WANT if mode & 0o111 or path.startswith(BIN_DIRS) else None


def mentions(fh: IO[bytes], markers: tuple[bytes, ...] = MARKERS) -> bool:
    """Whether any marker occurs in the file (chunks overlap so none is split unseen)."""
    overlap = max(len(m) for m in markers) - 1
    tail = b""
    fh.seek(0)
    while chunk := fh.read(_CHUNK):
        window = tail + chunk
        if any(m in window for m in markers):
            return True
        tail = window[-overlap:]
    return False


def _section_bytes(fh: IO[bytes], elf: ELFFile, name: str, file_size: int) -> bytes | None:
    for section in elf.iter_sections():
        if section.name != name:
            continue
        header = section.header
        size, offset = header["sh_size"], header["sh_offset"]
        if (header["sh_type"] == "SHT_NOBITS" or header["sh_flags"] & _SHF_COMPRESSED
                or size > MAX_SECTION_BYTES or offset + size > file_size):
            return None
        fh.seek(offset)
        return fh.read(size)
    return None


def parse(path: str, fh: IO[bytes], limits: Limits) -> Findings:
    if not mentions(fh):
        return Findings()
    file_size = fh.seek(0, 2)
    fh.seek(0)
    try:
        elf = ELFFile(fh)
        go = _section_bytes(fh, elf, GO_SECTION, file_size)
        rust = _section_bytes(fh, elf, cargo.SECTION, file_size)
    except (ELFError, ConstructError, ValueError, KeyError, IndexError, EOFError, AttributeError) as exc:
        # pyelftools raises its own errors and, on some truncated tables, Python's.
        return Findings(notes=(f"{path}: unreadable ELF section table ({type(exc).__name__})",))
    packages, notes = [], []
    for section, parse_section in ((go, golang.parse), (rust, cargo.parse)):
        if section is not None:
            found = parse_section(path, section)
            packages.extend(found.packages)
            notes.extend(found.notes)
    return Findings(packages=tuple(packages), notes=tuple(notes))


_WANT = Want("elf", Read.SPOOL, parse, magic=MAGIC, by_name=False)
