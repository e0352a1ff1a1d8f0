"""RPM packages (RHEL, AlmaLinux, Rocky, Fedora, Amazon Linux 2023, openSUSE…): the rpmdb.

rpm ≥ 4.16 keeps its database in SQLite, `rpmdb.sqlite`, under var/lib/rpm or (Fedora ≥ 36,
where var/lib/rpm is a symlink) usr/lib/sysimage/rpm. Its table Packages(hnum, blob) holds one
RPM header per installed package; `parse_header` reads the header structure itself (RPM's
documented on-disk format: index count, data length, 16-byte index entries, data store).

Older databases are not read: BerkeleyDB `Packages` (RHEL/CentOS ≤ 8, Amazon Linux 2) and NDB
`Packages.db` (SUSE). No maintained pure-Python reader of either exists (the Python bindings need
the C library), so their presence gives a note instead of packages.

`gpg-pubkey` entries are the repository keys rpm imported, not packages, and are skipped.
Versions are rpm's EVR, "epoch:version-release" without a missing or zero epoch. The source
package comes from SOURCERPM's file name ("openssl-3.0.7-27.el9.src.rpm" → openssl,
3.0.7-27.el9); a file name carries no epoch, so the source version takes the binary's.
"""

from __future__ import annotations

import sqlite3
import struct
import urllib.parse

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.model import RPM, Package

DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
SQLITE = "rpmdb.sqlite"
OLD_FORMATS = {"Packages": "BerkeleyDB", "Packages.db": "NDB"}

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
_TYPE_INT32, _TYPE_STRING, _TYPE_STRING_ARRAY, _TYPE_I18NSTRING = 4, 6, 8, 9
_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
_MAX_INDEX_ENTRIES = 1 << 16  # rpm's own limit on a header's tags
_MAX_SQL_STEPS = 50_000_000  # SQLite VM steps: a crafted database must not loop forever


def want(path: str) -> Want | None:
    for directory in DIRS:
        if path.startswith(directory):
            name = path[len(directory):]
            if name == SQLITE:
                return _WANT_SQLITE
            if name in OLD_FORMATS:
                return _WANT_OLD
    return None


def _header_fields(blob: bytes) -> dict[int, str | int]:
    """The tags this scanner needs from one header blob (string, first string of an array, or
    int32), skipping entries that point outside the blob."""
    if blob.startswith(_HEADER_MAGIC):
        blob = blob[8:]  # the on-disk header of a .rpm file; rpmdb blobs have no magic
    if len(blob) < 8:
        raise ValueError("truncated header")
    count, data_length = struct.unpack_from(">II", blob, 0)
    store = 8 + 16 * count
    if count > _MAX_INDEX_ENTRIES or store + data_length > len(blob):
        raise ValueError("header sizes exceed the blob")
    wanted = (TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM)
    fields: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in wanted or offset < 0 or offset >= data_length or n < 1:
            continue
        at = store + offset
        if kind == _TYPE_INT32:
            if offset + 4 <= data_length:
                fields[tag] = struct.unpack_from(">i", blob, at)[0]
        elif kind in (_TYPE_STRING, _TYPE_STRING_ARRAY, _TYPE_I18NSTRING):
            end = blob.find(b"\x00", at, store + data_length)
            if end != -1:
                fields[tag] = blob[at:end].decode("utf-8", "replace")
    return fields


def evr(epoch: int | None, version: str, release: str) -> str:
    vr = f"{version}-{release}" if release else version
    return f"{epoch}:{vr}" if epoch else vr


def split_source_rpm(filename: str) -> tuple[str, str] | None:
    """("openssl", "3.0.7-27.el9") from "openssl-3.0.7-27.el9.src.rpm"; None when malformed."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], f"{parts[1]}-{parts[2]}"
    return None


def parse_header(blob: bytes, path: str) -> Package | None:
    """The package one rpmdb header describes; None for gpg-pubkey and incomplete headers.
    Raises ValueError for a blob that is not a header."""
    fields = _header_fields(blob)
    name, version, release = fields.get(TAG_NAME), fields.get(TAG_VERSION), fields.get(TAG_RELEASE, "")
    if not isinstance(name, str) or not isinstance(version, str) or not name or name == "gpg-pubkey":
        return None
    epoch = fields.get(TAG_EPOCH)
    epoch = epoch if isinstance(epoch, int) and epoch > 0 else None
    source_name = source_version = None
    sourcerpm = fields.get(TAG_SOURCERPM)
    if isinstance(sourcerpm, str) and (source := split_source_rpm(sourcerpm)):
        source_name, source_version = source[0], evr(epoch, *source[1].split("-", 1))
    arch = fields.get(TAG_ARCH)
    return Package(name=name, version=evr(epoch, version, release if isinstance(release, str) else ""),
                   type=RPM, layer=UNATTRIBUTED, path=path, source_name=source_name,
                   source_version=source_version, arch=arch if isinstance(arch, str) and arch else None)


def read_sqlite(path: str, filename: str) -> Findings:
    """The packages of an rpmdb.sqlite at `filename` (a temporary copy), opened read-only and
    immutable, with the schema untrusted and a bound on the work a query may do."""
    uri = f"file:{urllib.parse.quote(filename)}?mode=ro&immutable=1"
    packages, bad = [], 0
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        return Findings(notes=(f"{path}: not an rpm SQLite database ({exc})",))
    try:
        steps = 0

        def budget() -> int:
            nonlocal steps
            steps += 1000
            return 1 if steps > _MAX_SQL_STEPS else 0

        conn.set_progress_handler(budget, 1000)
        conn.execute("PRAGMA trusted_schema=OFF")
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if kind is None or kind[0] != "table":
            return Findings(notes=(f"{path}: no Packages table, not an rpm database",))
        for (blob,) in conn.execute("SELECT blob FROM Packages"):
            if not isinstance(blob, bytes):
                bad += 1
                continue
            try:
                package = parse_header(blob, path)
            except (ValueError, struct.error):
                bad += 1
                continue
            if package is not None:
                packages.append(package)
    except sqlite3.Error as exc:
        return Findings(packages=tuple(packages), notes=(f"{path}: rpm database not fully read ({exc})",))
    finally:
        conn.close()
    notes = (f"{path}: {bad} malformed package headers skipped",) if bad else ()
    return Findings(packages=tuple(packages), notes=notes)


def note_old_format(path: str, data: bytes) -> Findings:
    kind = OLD_FORMATS[path.rpartition("/")[2]]
    return Findings(notes=(f"rpm {kind} database {path} not read: this scanner reads rpm's SQLite database only "
                           "(rpm ≥ 4.16: RHEL 9, Fedora ≥ 33, Amazon Linux 2023)",))


_WANT_SQLITE = Want("rpm", Read.DISK, read_sqlite)
_WANT_OLD = Want("rpm", Read.PRESENCE, note_old_format)
