"""scan/analyzers/cargo.py"""

from __future__ import annotations

import json
import zlib

from dockyard.scan.analyzers import cargo
from dockyard.scan.model import CARGO


def section(packages: list[dict[str, object]]) -> bytes:
    return zlib.compress(json.dumps({"packages": packages}).encode())


def test_runtime_packages_and_the_root() -> None:
    found = cargo.parse("usr/bin/rg", section([
        {"name": "ripgrep", "version": "14.1.0", "source": "local", "root": True, "dependencies": [1]},
        {"name": "regex", "version": "1.10.4", "source": "crates.io", "kind": "runtime"},
        {"name": "cc", "version": "1.0.90", "source": "crates.io", "kind": "build"},
        {"name": "memchr", "version": "2.7.2", "source": "crates.io"},
        {"name": "memchr", "version": "2.7.2", "source": "crates.io"},
        {"name": "broken"}, "junk",
    ]))
    assert [(p.name, p.version, p.type) for p in found.packages] == [
        ("ripgrep", "14.1.0", CARGO), ("regex", "1.10.4", CARGO), ("memchr", "2.7.2", CARGO)]


def test_malformed_data_is_a_note() -> None:
    for data in (b"not zlib", zlib.compress(b"not json"), zlib.compress(b'{"packages": 3}')):
        found = cargo.parse("usr/bin/x", data)
        assert found.packages == () and found.notes


def test_a_zlib_bomb_stops_at_the_cap() -> None:
    bomb = zlib.compress(b" " * (cargo.MAX_JSON_BYTES + 100))
    found = cargo.parse("usr/bin/x", bomb)
    assert found.packages == () and "decompresses past" in found.notes[0]
