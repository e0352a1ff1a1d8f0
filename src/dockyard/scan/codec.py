"""Inventories and findings to and from the compact JSON the metadata database keeps
(zlib-compressed: a Debian image's inventory is ~100 packages, a node image's thousands).

Pure functions. A stored inventory is re-read on every re-evaluation, so the format is flat
lists rather than objects per field, and versioned: a format this code does not know reads as
None (the image is scanned again rather than misread).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from dockyard.scan.model import Finding, Inventory, LayerInfo, OsInfo, Package

FORMAT = 1  # findings are rows (lists): a node image's thousands of findings encode and decode fast


def _pack(doc: Any) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def _unpack(data: bytes | None) -> Any:
    if not data:
        return None
    try:
        return json.loads(zlib.decompress(data))
    except (zlib.error, ValueError):
        return None


def encode_inventory(inventory: Inventory) -> bytes:
    os_ = inventory.os
    return _pack({
        "v": FORMAT,
        "os": None if os_ is None else [os_.id, os_.version, os_.codename, os_.pretty_name],
        "layers": [[layer.digest, layer.created_by] for layer in inventory.layers],
        "packages": [[p.name, p.version, p.type, p.layer, p.path, p.source_name, p.source_version, p.arch]
                     for p in inventory.packages],
    })


def decode_inventory(data: bytes | None) -> Inventory | None:
    doc = _unpack(data)
    if not isinstance(doc, dict) or doc.get("v") != FORMAT:
        return None
    os_ = doc.get("os")
    return Inventory(
        os=None if os_ is None else OsInfo(*os_),
        layers=tuple(LayerInfo(d, c) for d, c in doc["layers"]),
        packages=tuple(Package(name=n, version=v, type=t, layer=layer, path=path, source_name=sn, source_version=sv,
                               arch=arch) for n, v, t, layer, path, sn, sv, arch in doc["packages"]),
    )


_FINDING_FIELDS = ("id", "aliases", "package", "installed_version", "type", "severity", "layer", "fixed_version",
                   "source_package", "fix_status", "cvss_score", "title", "url", "sources")


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {name: (list(value) if isinstance(value := getattr(finding, name), tuple) else value)
            for name in _FINDING_FIELDS}


def finding_row(finding: Finding, new: bool = False) -> list[Any]:
    """A finding as the stored row: its fields in _FINDING_FIELDS order, then the "new" flag."""
    f = finding  # lists, not tuples: a row compares equal to the same row read back from JSON
    return [f.id, list(f.aliases), f.package, f.installed_version, f.type, f.severity, f.layer, f.fixed_version,
            f.source_package, f.fix_status, f.cvss_score, f.title, f.url, list(f.sources), new]


def finding_of_row(row: list[Any]) -> tuple[Finding, bool]:
    (id_, aliases, package, installed, type_, severity, layer, fixed, source, fix_status, cvss, title, url,
     sources, new) = row
    return Finding(id=id_, aliases=tuple(aliases), package=package, installed_version=installed, type=type_,
                   severity=severity, layer=layer, fixed_version=fixed, source_package=source, fix_status=fix_status,
                   cvss_score=cvss, title=title, url=url, sources=tuple(sources)), bool(new)


def finding_key(finding: Finding) -> tuple[str, str, str]:
    """What makes a finding the same one in two evaluations (for "new since last scan")."""
    return finding.id, finding.package, finding.installed_version


def row_key(row: list[Any]) -> tuple[str, str, str]:
    return row[0], row[2], row[3]


def encode_rows(rows: list[list[Any]]) -> bytes:
    return zlib.compress(json.dumps({"v": FORMAT, "findings": rows}, separators=(",", ":")).encode(), 1)


def encode_findings(findings: Iterable[Finding], new: set[tuple[str, str, str]] | None = None) -> bytes:
    """`new`: keys of the findings the previous evaluation did not have."""
    return encode_rows([finding_row(f, new is not None and finding_key(f) in new) for f in findings])


def decode_rows(data: bytes | None) -> list[list[Any]] | None:
    """The stored rows (see finding_row); None when absent or unreadable."""
    doc = _unpack(data)
    if not isinstance(doc, dict) or doc.get("v") != FORMAT:
        return None
    rows = doc.get("findings")
    return rows if isinstance(rows, list) else None


def decode_findings(data: bytes | None) -> list[tuple[Finding, bool]] | None:
    """(finding, new since the previous evaluation) pairs; None when absent or unreadable."""
    rows = decode_rows(data)
    return None if rows is None else [finding_of_row(row) for row in rows]
