"""scan/analyzers/python.py"""

from __future__ import annotations

import pytest

from dockyard.scan.analyzers import python, wanted
from dockyard.scan.model import PYPI


@pytest.mark.parametrize("path", [
    "usr/local/lib/python3.12/site-packages/requests-2.32.3.dist-info/METADATA",
    "opt/venv/lib/python3.11/site-packages/Django-4.2.dist-info/METADATA",
    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
    "usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info",
    "usr/lib/python3.6/site-packages/setuptools-40.0-py3.6.egg/EGG-INFO/PKG-INFO",
])
def test_metadata_paths(path: str) -> None:
    assert wanted(path, 0o644).analyzer == "python"


@pytest.mark.parametrize("path", [
    "usr/lib/python3/dist-packages/requests/METADATA", "app/PKG-INFO",
    "x.dist-info/RECORD", "usr/share/doc/x.egg-info.txt",
])
def test_other_paths(path: str) -> None:
    assert wanted(path, 0o644) is None


def test_name_and_version_as_written() -> None:
    data = (b"Metadata-Version: 2.1\nName: Flask_SQLAlchemy\nVersion: 3.1.1\nSummary: x\n"
            b"Classifier: a\n  continued\n\nName: not-a-header\nVersion: 9\n")
    found = python.parse("a.dist-info/METADATA", data).packages
    assert [(p.name, p.version, p.type) for p in found] == [("Flask_SQLAlchemy", "3.1.1", PYPI)]


def test_first_header_wins_and_missing_version() -> None:
    assert python.parse("p", b"Name: a\nName: b\nVersion: 1\n").packages[0].name == "a"
    assert python.parse("p", b"Name: a\n\nVersion: 1\n").packages == ()
    assert python.parse("p", b"\xff\xfe garbage").packages == ()
