"""Layout detection (scan/vulndb/layout.py): a tree of feeds side by side, a subdirectory of one
source, a single file; unknown files skipped and counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dockyard.scan.vulndb.layout import read_file, read_tree, source_root
from tests.unit.scan.vulndb.vendored import VULNDATA

EXPECTED = {
    "alpine:alpine-secdb", "alpine:alpine-vuln-list-3.20", "csaf:redhat-csaf", "debian:debian-security-tracker-2023",
    "debian:debian-vuln-list-tracker", "npm:npm-nodejs-security-wg", "osv:osv-almalinux", "osv:osv-ghsa-npm-maven",
    "osv:osv-ghsa-pypi", "osv:osv-go", "osv:osv-pypi", "rustsec:rustsec", "ubuntu:ubuntu-cve-tracker-2020",
    "wolfi:wolfi-advisories-apache2",
}


def test_whole_tree() -> None:
    tree = read_tree([VULNDATA])
    assert set(tree.sources) == EXPECTED
    assert tree.unknown == 2  # README.md and PROVENANCE.md
    assert {Path(p).name for p in tree.unknown_examples} == {"README.md", "PROVENANCE.md"}
    for source in tree.sources.values():
        assert source.records > 0, source.name
        assert Path(source.path).parent == VULNDATA
    assert tree.sources["osv:osv-go"].skipped == 1  # the withdrawn record
    assert tree.sources["rustsec:rustsec"].skipped == 2  # withdrawn + informational
    assert tree.sources["npm:npm-nodejs-security-wg"].skipped == 1  # vuln/core
    assert tree.sources["osv:osv-almalinux"].skipped == 1  # the ALBA bug-fix erratum


@pytest.mark.parametrize(("relative", "name"), [
    ("osv-pypi", "osv:osv-pypi"),
    ("osv-pypi/vulns/requests", "osv:osv-pypi"),
    ("osv-go/data/osv/GO-2025-3503.json", "osv:osv-go"),
    ("debian-security-tracker-2023/data/DSA/list", "debian:debian-security-tracker-2023"),
    ("debian-vuln-list-tracker/tracker/CVE", "debian:debian-vuln-list-tracker"),
    ("alpine-secdb/v3.4/community.yaml", "alpine:alpine-secdb"),
    ("alpine-vuln-list-3.20/alpine/3.20/main", "alpine:alpine-vuln-list-3.20"),
    ("ubuntu-cve-tracker-2020/active", "ubuntu:ubuntu-cve-tracker-2020"),
    ("rustsec/crates/hyper", "rustsec:rustsec"),
    ("npm-nodejs-security-wg/vuln", "npm:npm-nodejs-security-wg"),
    ("redhat-csaf", "csaf:redhat-csaf"),
    ("wolfi-advisories-apache2/openssl.advisories.yaml", "wolfi:wolfi-advisories-apache2"),
])
def test_part_of_a_source_is_that_source(relative: str, name: str) -> None:
    assert set(read_tree([VULNDATA / relative]).sources) == {name}


def test_copied_elsewhere_and_renamed(tmp_path: Path) -> None:
    shutil.copytree(VULNDATA / "osv-pypi", tmp_path / "pypa-advisories")
    (tmp_path / "flat").mkdir()
    shutil.copy(VULNDATA / "osv-go/data/osv/GO-2022-1059.json", tmp_path / "flat")
    tree = read_tree([tmp_path])
    assert set(tree.sources) == {"osv:pypa-advisories", "osv:flat"}
    renamed = read_tree([tmp_path / "flat"], name="osv-go-feed")
    assert set(renamed.sources) == {"osv:osv-go-feed"}


def test_unknown_and_broken_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"some": "thing"}')
    (tmp_path / ".hidden.json").write_text('{"id": "X", "affected": []}')
    tree = read_tree([tmp_path])
    assert tree.sources == {} and tree.unknown == 3
    with pytest.raises(ValueError):
        read_file(tmp_path / "other.json")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_tree([tmp_path / "nope"])


def test_source_root_markers() -> None:
    ghsa = VULNDATA / "osv-ghsa-npm-maven/advisories/github-reviewed/2022/03/GHSA-xvch-5gv4-984h"
    file = ghsa / "GHSA-xvch-5gv4-984h.json"
    assert source_root("osv", file, file) == VULNDATA / "osv-ghsa-npm-maven"
