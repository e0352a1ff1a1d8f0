"""scan/analyzers/apk.py"""

from __future__ import annotations

from dockyard.scan.analyzers import apk, wanted
from dockyard.scan.model import APK
from tests.unit.scan.layerkit import apk_entry, apk_installed


def test_installed_packages_with_origin_and_arch() -> None:
    data = apk_installed(apk_entry("musl", "1.2.5-r0"), apk_entry("libcrypto3", "3.3.2-r0", origin="openssl"),
                         apk_entry("busybox-binsh", "1.36.1-r29", origin="busybox", arch="aarch64"))
    found = apk.parse("lib/apk/db/installed", data).packages
    assert [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in found] == [
        ("musl", "1.2.5-r0", "musl", "1.2.5-r0", "x86_64"),
        ("libcrypto3", "3.3.2-r0", "openssl", "3.3.2-r0", "x86_64"),
        ("busybox-binsh", "1.36.1-r29", "busybox", "1.36.1-r29", "aarch64"),
    ]
    assert {p.type for p in found} == {APK}
    assert {p.path for p in found} == {"lib/apk/db/installed"}


def test_no_trailing_blank_line_and_junk() -> None:
    data = b"P:a\nV:1-r0\nbogus\nF:etc\nR:file\n\n\nP:noversion\n\nP:b\nV:2-r1"
    assert [(p.name, p.version) for p in apk.parse("lib/apk/db/installed", data).packages] == [
        ("a", "1-r0"), ("b", "2-r1")]


def test_paths() -> None:
    assert wanted("lib/apk/db/installed", 0o644).analyzer == "apk"
    assert wanted("lib/apk/db/triggers", 0o644) is None
