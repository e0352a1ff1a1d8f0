"""Rust crates compiled into a binary built with `cargo auditable`.

It embeds the dependency tree in an ELF section `.dep-v0`: zlib-compressed JSON,
`{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}`. Every package of
kind "runtime" (the default) is reported; "build" packages (build scripts, proc macros) ran at
compile time and are not in the binary, so they are skipped. The root package (the binary's own
crate) is kept with its version even when it is not from crates.io: it is what the binary is,
and a crate of the same name on crates.io with advisories is worth a look. Binaries built without
cargo auditable carry nothing readable and are not reported.
"""

from __future__ import annotations

import json
import zlib

from dockyard.scan.analyzers import UNATTRIBUTED, Findings
from dockyard.scan.model import CARGO, Package

SECTION = ".dep-v0"
MAX_JSON_BYTES = 8 << 20  # the decompressed tree; a zlib bomb stops here


def decompress(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_JSON_BYTES + 1)
    if len(out) > MAX_JSON_BYTES:
        raise ValueError(f"decompresses past {MAX_JSON_BYTES} bytes")
    return out


def parse(path: str, section: bytes) -> Findings:
    """Packages from the bytes of a binary's `.dep-v0` section."""
    try:
        doc = json.loads(decompress(section).decode("utf-8"))
    except (ValueError, zlib.error, RecursionError) as exc:
        return Findings(notes=(f"{path}: unreadable cargo auditable data ({exc})",))
    entries = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return Findings(notes=(f"{path}: cargo auditable data without packages",))
    found: dict[tuple[str, str], Package] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kind", "runtime") != "runtime":
            continue
        name, version = entry.get("name"), entry.get("version")
        if isinstance(name, str) and isinstance(version, str) and name and version:
            found.setdefault((name, version), Package(name=name, version=version, type=CARGO,
                                                      layer=UNATTRIBUTED, path=path))
    return Findings(packages=tuple(found.values()))
