"""scan/analyzers/os_release.py"""

from __future__ import annotations

from dockyard.scan.analyzers import os_release, wanted
from dockyard.scan.model import OsInfo

BOOKWORM = b'''PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
'''

SID = b'''PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
'''


def test_debian() -> None:
    assert os_release.parse("etc/os-release", BOOKWORM).os == OsInfo(
        id="debian", version="12", codename="bookworm", pretty_name="Debian GNU/Linux 12 (bookworm)")


def test_debian_sid_has_no_version_id() -> None:
    assert os_release.parse("etc/os-release", SID).os == OsInfo(
        id="debian", version="", codename="trixie", pretty_name="Debian GNU/Linux trixie/sid")


def test_alpine_without_codename() -> None:
    found = os_release.parse("etc/os-release", b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n")
    assert found.os == OsInfo(id="alpine", version="3.20.3", codename=None, pretty_name=None)


def test_shell_quoting_comments_and_junk() -> None:
    text = b"# comment\n\nnot a field\nID='almalinux'\nPRETTY_NAME=\"Alma \\\"Linux\\\" 9\"\nVERSION_ID = 9.4 \n"
    assert os_release.parse("usr/lib/os-release", text).os == OsInfo(
        id="almalinux", version="9.4", pretty_name='Alma "Linux" 9')


def test_no_id_is_a_note() -> None:
    found = os_release.parse("etc/os-release", b"NAME=Something\n")
    assert found.os is None and found.notes


def test_paths() -> None:
    assert wanted("etc/os-release", 0o644).analyzer == "os-release"
    assert wanted("usr/lib/os-release", 0o644).analyzer == "os-release"
    assert wanted("opt/etc/os-release", 0o644) is None
