"""What the scanner reads from a layer, and how: one module per kind of package database.

Each analyzer module has two parts kept apart: a declaration of the files it wants (`wants`,
from a path and a mode, without reading anything) and pure parsing functions (bytes, or a
seekable file for formats that need random access, in; `Findings` out). `wanted()` below is the
only place that knows them all; the inventory (scan/inventory.py) does the reading.

Analyzers never raise on a malformed file (anyone can push one): they return what they could
read and say what they could not in `Findings.notes`. Packages come back with `layer` set to
`UNATTRIBUTED`: which layer brought a package in is decided by the inventory, across layers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Union

from dockyard.scan.layers import Limits
from dockyard.scan.model import OsInfo, Package

UNATTRIBUTED = -1


@dataclass(frozen=True)
class Findings:
    """What one file says: packages, the OS (os-release only), and notes for users."""

    packages: tuple[Package, ...] = ()
    os: OsInfo | None = None
    notes: tuple[str, ...] = ()


class Read(enum.Enum):
    BYTES = "bytes"  # the content in memory: parse(path, data)
    SPOOL = "spool"  # a seekable temporary file: parse(path, fh, limits)
    DISK = "disk"  # a named temporary file: parse(path, filename) (sqlite3 needs one)
    PRESENCE = "presence"  # not read: parse(path, b"") (a format this scanner only notes)


BytesParser = Callable[[str, bytes], Findings]
SpoolParser = Callable[[str, IO[bytes], Limits], Findings]
DiskParser = Callable[[str, str], Findings]


@dataclass(frozen=True)
class Want:
    analyzer: str  # "dpkg", "apk", … (for notes and tests)
    read: Read
    parse: Union[BytesParser, SpoolParser, DiskParser]
    magic: bytes = b""  # read only when the content starts with this (ELF's "\x7fELF")
    by_name: bool = True  # False: wanted for its mode alone (any executable): no note when skipped


def wanted(path: str, mode: int) -> Want | None:
    """How to read the regular file at `path` (normalised), or None when no analyzer wants it.
    Called for every file of every layer: each `want` is a few string comparisons."""
    for want_of in _BY_NAME:
        if want := want_of(path):
            return want
    return elf.want(path, mode)


# Imported last: each analyzer imports Findings, Read and Want from this module.
from dockyard.scan.analyzers import apk, dpkg, elf, java, npm, os_release, python, rpm  # noqa: E402

_BY_NAME: tuple[Callable[[str], Want | None], ...] = (
    os_release.want, dpkg.want, apk.want, rpm.want, python.want, npm.want, java.want)
