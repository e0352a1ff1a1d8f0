"""Wolfi's advisories repository (`<package>.advisories.yaml`, schema 2.x): Chainguard's
statements about each vulnerability of each Wolfi origin package.

Each advisory (`CGA-…` id, CVE/GHSA aliases) has timestamped events; the latest event decides
(docs/event_types.md of that repository):
- `fixed` (`data.fixed-version`, an apk version): affected below it;
- `false-positive-determination`: not affected, never reported;
- `fix-not-planned`: reported as will_not_fix;
- `detection`, `true-positive-determination`, `pending-upstream-fix`, `analysis-not-planned`:
  reported as affected, no fix yet.

Only data from before the repository's licence change may be used (see the staged PROVENANCE):
the importer reads whatever it is given; which data is given is the operator's choice.
"""

from __future__ import annotations

from typing import Any

from dockyard.scan.vulndb.records import (
    AFFECTED,
    NOT_AFFECTED,
    WILL_NOT_FIX,
    WOLFI,
    Advisory,
    Affected,
    fixed_in,
    iso,
    normalise_name,
)


def is_advisories_file(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("package"), dict) and "advisories" in doc


def _entry(package: str, events: list[Any]) -> Affected | None:
    timed = [e for e in events if isinstance(e, dict) and e.get("type")]
    if not timed:
        return None
    last = max(timed, key=lambda e: iso(e.get("timestamp")) or "")
    kind = last["type"]
    if kind == "fixed":
        version = str((last.get("data") or {}).get("fixed-version") or "")
        if not version:
            return None
        return Affected(WOLFI, package, ranges=fixed_in(version))
    if kind == "false-positive-determination":
        return Affected(WOLFI, package, status=NOT_AFFECTED)
    if kind == "fix-not-planned":
        return Affected(WOLFI, package, status=WILL_NOT_FIX)
    return Affected(WOLFI, package, status=AFFECTED)


def parse(doc: dict[str, Any]) -> list[Advisory]:
    package = normalise_name(WOLFI, str(doc["package"].get("name") or ""))
    if not package:
        raise ValueError("no package name")
    out = []
    for item in doc.get("advisories") or ():
        if not isinstance(item, dict) or not item.get("id"):
            continue
        entry = _entry(package, list(item.get("events") or ()))
        if entry is None:
            continue
        events = [e for e in item.get("events") or () if isinstance(e, dict)]
        timestamps = sorted(filter(None, (iso(e.get("timestamp")) for e in events)))
        out.append(Advisory(
            id=str(item["id"]), aliases=tuple(str(a) for a in item.get("aliases") or ()),
            published=timestamps[0] if timestamps else None, modified=timestamps[-1] if timestamps else None,
            affected=[entry],
        ))
    return out
