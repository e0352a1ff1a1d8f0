"""scan/analyzers/rpm.py"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest

from dockyard.scan.analyzers import Read, rpm, wanted
from dockyard.scan.model import RPM
from tests.unit.scan.layerkit import rpm_header, rpmdb_sqlite

PATH = "var/lib/rpm/rpmdb.sqlite"


def test_header_fields() -> None:
    blob = rpm_header("openssl-libs", "3.0.7", "27.el9", epoch=1, arch="x86_64",
                      sourcerpm="openssl-3.0.7-27.el9.src.rpm")
    package = rpm.parse_header(blob, PATH)
    assert package is not None
    assert (package.name, package.version, package.arch, package.type) == ("openssl-libs", "1:3.0.7-27.el9",
                                                                           "x86_64", RPM)
    assert (package.source_name, package.source_version) == ("openssl", "1:3.0.7-27.el9")


@pytest.mark.parametrize(("epoch", "version"), [(None, "2.34-100.el9"), (0, "2.34-100.el9"), (2, "2:2.34-100.el9")])
def test_missing_or_zero_epoch_is_omitted(epoch: int | None, version: str) -> None:
    package = rpm.parse_header(rpm_header("glibc", "2.34", "100.el9", epoch=epoch), PATH)
    assert package is not None and package.version == version
    assert package.source_name is None  # no SOURCERPM tag


def test_header_with_the_file_magic() -> None:
    blob = b"\x8e\xad\xe8\x01\x00\x00\x00\x00" + rpm_header("bash", "5.1.8", "9.el9")
    assert rpm.parse_header(blob, PATH).version == "5.1.8-9.el9"


def test_gpg_pubkey_is_not_a_package() -> None:
    assert rpm.parse_header(rpm_header("gpg-pubkey", "fd431d51", "4ae0493b", arch=""), PATH) is None


@pytest.mark.parametrize("blob", [b"", b"\x00\x00\x00\x01", struct.pack(">II", 1000, 10) + bytes(20),
                                  struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF)])
def test_malformed_headers_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        rpm.parse_header(blob, PATH)


def test_entries_pointing_outside_the_store_are_ignored() -> None:
    blob = bytearray(rpm_header("bash", "5.1.8", "9.el9"))
    struct.pack_into(">i", blob, 8 + 8, 10_000)  # the first entry's offset
    assert rpm.parse_header(bytes(blob), PATH) is None  # NAME lost: not a package


@pytest.mark.parametrize(("filename", "expected"), [
    ("openssl-3.0.7-27.el9.src.rpm", ("openssl", "3.0.7-27.el9")),
    ("python3.11-3.11.5-1.el9_3.src.rpm", ("python3.11", "3.11.5-1.el9_3")),
    ("kernel-5.14.0-427.13.1.el9_4.nosrc.rpm", ("kernel", "5.14.0-427.13.1.el9_4")),
    ("garbage.src.rpm", None), ("openssl-3.0.7-27.el9.rpm", None),
])
def test_split_source_rpm(filename: str, expected: tuple[str, str] | None) -> None:
    assert rpm.split_source_rpm(filename) == expected


def _db(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(data)
    return str(path)


def test_sqlite_database(tmp_path: Path) -> None:
    data = rpmdb_sqlite([rpm_header("bash", "5.1.8", "9.el9", sourcerpm="bash-5.1.8-9.el9.src.rpm"),
                         rpm_header("gpg-pubkey", "fd431d51", "4ae0493b"),
                         rpm_header("curl", "7.76.1", "29.el9_4", arch="aarch64"),
                         b"not a header"])
    found = rpm.read_sqlite(PATH, _db(tmp_path, data))
    assert [(p.name, p.version, p.arch) for p in found.packages] == [("bash", "5.1.8-9.el9", "x86_64"),
                                                                    ("curl", "7.76.1-29.el9_4", "aarch64")]
    assert found.notes == (f"{PATH}: 1 malformed package headers skipped",)


def test_not_a_database(tmp_path: Path) -> None:
    found = rpm.read_sqlite(PATH, _db(tmp_path, b"garbage" * 100))
    assert found.packages == () and found.notes


def test_a_view_named_packages_is_not_queried(tmp_path: Path) -> None:
    path = tmp_path / "evil.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                 "SELECT randomblob(10) AS blob FROM c")
    conn.close()
    found = rpm.read_sqlite(PATH, str(path))
    assert found.packages == () and "no Packages table" in found.notes[0]


def test_berkeleydb_and_ndb_are_noted_not_read() -> None:
    want = wanted("var/lib/rpm/Packages", 0o644)
    assert want is not None and want.read is Read.PRESENCE
    assert "BerkeleyDB" in want.parse("var/lib/rpm/Packages", b"").notes[0]
    assert "NDB" in wanted("usr/lib/sysimage/rpm/Packages.db", 0o644).parse("usr/lib/sysimage/rpm/Packages.db",
                                                                             b"").notes[0]


def test_paths() -> None:
    assert wanted(PATH, 0o644).read is Read.DISK
    assert wanted("usr/lib/sysimage/rpm/rpmdb.sqlite", 0o644).read is Read.DISK
    assert wanted("var/lib/rpm/rpmdb.sqlite-shm", 0o644) is None
    assert wanted("var/lib/rpm/Name", 0o644) is None
