"""scan/analyzers/dpkg.py"""

from __future__ import annotations

import pytest

from dockyard.scan.analyzers import dpkg, wanted
from dockyard.scan.model import DEB
from tests.unit.scan.layerkit import dpkg_stanza, dpkg_status

PATH = "var/lib/dpkg/status"


def names(data: bytes, path: str = PATH) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in dpkg.parse(path, data).packages]


def test_binary_and_source_packages() -> None:
    status = dpkg_status(
        dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"),
        dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
        dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", source="zlib"),
        dpkg_stanza("base-files", "12.4+deb12u5"),
        dpkg_stanza("libc6", "2.36-9+deb12u4", arch="i386", source="glibc"),
    )
    assert names(status) == [
        ("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2", "amd64"),
        ("bash", "5.2.15-2+b2", "bash", "5.2.15-2", "amd64"),  # a binNMU: the source version differs
        ("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1", "amd64"),  # the epoch kept as written
        ("base-files", "12.4+deb12u5", "base-files", "12.4+deb12u5", "amd64"),  # no Source: itself
        ("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4", "i386"),
    ]
    assert {p.type for p in dpkg.parse(PATH, status).packages} == {DEB}


@pytest.mark.parametrize(("status", "installed"), [
    ("install ok installed", True),
    ("hold ok installed", True),
    ("deinstall ok config-files", False),
    ("install reinstreq half-installed", False),
    ("purge ok not-installed", False),
    ("install ok unpacked", False),
])
def test_only_installed_packages_count(status: str, installed: bool) -> None:
    assert bool(names(dpkg_status(dpkg_stanza("pkg", "1.0", status=status)))) is installed


def test_distroless_status_d_has_no_status_and_several_stanzas() -> None:
    data = dpkg_status(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl", status=None),
                       dpkg_stanza("openssl", "3.0.11-1~deb12u2", status=None))
    assert [n[0] for n in names(data, "var/lib/dpkg/status.d/libssl3")] == ["libssl3", "openssl"]


def test_continuation_lines_are_not_fields() -> None:
    data = b"Package: a\nStatus: install ok installed\nVersion: 1\nDescription: x\n Version: 9\n Package: b\n"
    assert names(data) == [("a", "1", "a", "1", None)]


def test_incomplete_stanzas_and_junk_are_skipped() -> None:
    data = b"\n\ngarbage line\nPackage: noversion\nStatus: install ok installed\n\nVersion: 1\n\n\xff\xfe\n"
    assert names(data) == []


def test_crlf_and_no_trailing_newline() -> None:
    data = b"Package: a\r\nStatus: install ok installed\r\nVersion: 1.0\r\nSource: src (0.9)"
    assert names(data) == [("a", "1.0", "src", "0.9", None)]


def test_paths() -> None:
    assert wanted(PATH, 0o644).analyzer == "dpkg"
    assert wanted("var/lib/dpkg/status.d/libc6", 0o644).analyzer == "dpkg"
    assert wanted("var/lib/dpkg/status.d/libc6.md5sums", 0o644) is None
    assert wanted("var/lib/dpkg/status-old", 0o644) is None
    assert wanted("var/lib/dpkg/status.d/sub/x", 0o644) is None
