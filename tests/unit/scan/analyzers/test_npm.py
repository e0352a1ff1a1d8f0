"""scan/analyzers/npm.py"""

from __future__ import annotations

import json

import pytest

from dockyard.scan.analyzers import npm, wanted
from dockyard.scan.analyzers import UNATTRIBUTED
from dockyard.scan.model import NPM, PYPI, Package
from tests.unit.scan.layerkit import package_lock


@pytest.mark.parametrize(("path", "kind"), [
    ("app/node_modules/express/package.json", "package"),
    ("node_modules/@babel/core/package.json", "package"),
    ("usr/local/lib/node_modules/npm/node_modules/semver/package.json", "package"),
    ("app/package-lock.json", "lock"),
    ("package-lock.json", "lock"),
    ("app/package.json", None),
    ("app/node_modules/express/lib/package.json", None),
    ("app/node_modules/@babel/package.json", None),
    ("app/node_modules/.package-lock.json", None),
    ("app/node_modules/x/package-lock.json", None),
])
def test_paths(path: str, kind: str | None) -> None:
    want = wanted(path, 0o644)
    if kind is None:
        assert want is None
    else:
        assert want is not None and want.parse is (npm.parse_package_json if kind == "package" else npm.parse_lock)


def test_package_json() -> None:
    found = npm.parse_package_json("n/node_modules/@scope/x/package.json",
                                   json.dumps({"name": "@scope/x", "version": "1.2.3"}).encode())
    assert [(p.name, p.version, p.type) for p in found.packages] == [("@scope/x", "1.2.3", NPM)]


@pytest.mark.parametrize("doc", [b"{}", b'{"name": "x"}', b'{"version": "1"}', b"[1]", b"not json",
                                 b'{"name": 1, "version": "1"}'])
def test_package_json_without_name_and_version(doc: bytes) -> None:
    assert npm.parse_package_json("node_modules/x/package.json", doc).packages == ()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_lock_files(version: int) -> None:
    data = package_lock({"express": "4.19.2", "@types/node": "20.1.0", "jest": "29.0.0"}, version, dev=["jest"])
    found = npm.parse_lock("app/package-lock.json", data)
    assert sorted((p.name, p.version) for p in found.packages) == [("@types/node", "20.1.0"), ("express", "4.19.2")]


def test_lock_v3_nested_links_and_non_registry_versions() -> None:
    doc = {"lockfileVersion": 3, "packages": {
        "": {"name": "app", "version": "1.0.0"},
        "node_modules/a": {"version": "1.0.0"},
        "node_modules/a/node_modules/b": {"version": "2.0.0"},
        "node_modules/ws-pkg": {"resolved": "packages/ws-pkg", "link": True},
        "packages/ws-pkg": {"name": "ws-pkg", "version": "0.0.1"},
        "node_modules/git-dep": {"version": "git+ssh://git@github.com/x/y.git#abc"},
    }}
    found = npm.parse_lock("package-lock.json", json.dumps(doc).encode())
    assert sorted((p.name, p.version) for p in found.packages) == [("a", "1.0.0"), ("b", "2.0.0")]


def test_lock_v1_nested_dependencies() -> None:
    doc = {"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0", "dependencies": {
        "b": {"version": "2.0.0"}}}, "c": {"version": "file:../c"}}}
    found = npm.parse_lock("package-lock.json", json.dumps(doc).encode())
    assert sorted((p.name, p.version) for p in found.packages) == [("a", "1.0.0"), ("b", "2.0.0")]


def _pkg(name: str, version: str, path: str, kind: str = NPM) -> Package:
    return Package(name=name, version=version, type=kind, layer=UNATTRIBUTED, path=path)


def test_root_of() -> None:
    assert npm.root_of("app/node_modules/x/node_modules/y/package.json") == "app/"
    assert npm.root_of("node_modules/x/package.json") == ""
    assert npm.root_of("srv/app/package-lock.json") == "srv/app/"
    assert npm.root_of("package-lock.json") == ""


def test_dedupe_drops_lock_entries_installed_next_to_the_lock() -> None:
    packages = [
        _pkg("express", "4.19.2", "app/node_modules/express/package.json"),
        _pkg("express", "4.19.2", "app/package-lock.json"),  # installed: dropped
        _pkg("qs", "6.11.0", "app/package-lock.json"),  # not installed here: kept
        _pkg("express", "4.18.0", "app/package-lock.json"),  # another version: kept
        _pkg("express", "4.19.2", "other/package-lock.json"),  # another application: kept
        _pkg("express", "4.19.2", "app/package-lock.json", PYPI),  # not npm: untouched
    ]
    assert [(p.name, p.version, p.path) for p in npm.dedupe(packages)] == [
        ("express", "4.19.2", "app/node_modules/express/package.json"),
        ("qs", "6.11.0", "app/package-lock.json"),
        ("express", "4.18.0", "app/package-lock.json"),
        ("express", "4.19.2", "other/package-lock.json"),
        ("express", "4.19.2", "app/package-lock.json"),
    ]
