"""Whether one affected entry applies to one installed version, and with which fix. Pure.

OSV semantics (ossf.github.io/osv-schema, "Evaluation"): a range is a list of events in order;
each `introduced` opens an interval (`"0"` = from the first version), closed by the next `fixed`
(exclusive: the fix itself is not affected), `last_affected` (inclusive) or `limit`; an
interval never closed is open-ended. A version is affected when it falls in an interval of any
range, or is listed in `versions`. SEMVER ranges use semver ordering whatever the ecosystem
(Go's with its spellings), ECOSYSTEM ranges the ecosystem's own (versions.py).

When the installed version cannot be read by its scheme, or a bound it must be compared with
cannot, the entry does not apply: the matcher never guesses a finding. Entries without
versions (a distro's `<unfixed>`, `<no-dsa>`, a Wolfi detection) apply to every version.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from packaging.utils import canonicalize_version

from dockyard.scan import versions as v
from dockyard.scan.vulndb.records import (
    AFFECTED,
    ALMALINUX,
    ALPINE,
    CARGO,
    DEBIAN,
    FIXED,
    GO,
    MAVEN,
    NOT_AFFECTED,
    NPM,
    PYPI,
    RHEL,
    ROCKY,
    UBUNTU,
    WOLFI,
    Affected,
    Range,
)

SCHEMES = {
    DEBIAN: v.DEB, UBUNTU: v.DEB, ALPINE: v.APK, WOLFI: v.APK, ALMALINUX: v.RPM, ROCKY: v.RPM, RHEL: v.RPM,
    PYPI: v.PEP440, NPM: v.SEMVER, GO: v.GO, MAVEN: v.MAVEN, CARGO: v.SEMVER,
}


def scheme(ecosystem: str, range_type: str = "ECOSYSTEM") -> str:
    if range_type == "SEMVER":
        return v.GO if ecosystem == GO else v.SEMVER
    return SCHEMES.get(ecosystem, v.SEMVER)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # FIXED (with `fixed`) | AFFECTED | WILL_NOT_FIX | FIX_DEFERRED
    fixed: str | None = None


def _in_range(rng: Range, sch: str, version: str) -> tuple[bool, str | None]:
    """(affected, the fixed version closing the interval it is in)."""
    start: str | None = None
    for kind, bound in (*rng.events, ("end", "")):
        if kind == "introduced":
            if start is not None and _at_or_after(sch, version, start):
                return True, None  # the previous interval was never closed
            start = bound
            continue
        if start is None:
            continue
        if _at_or_after(sch, version, start):
            if kind == "end":
                return True, None
            c = v.compare(sch, version, bound)
            if c is not None and (c < 0 or (kind == "last_affected" and c == 0)):
                return True, (bound if kind == "fixed" else None)
        start = None
    return False, None


def _at_or_after(sch: str, version: str, start: str) -> bool:
    if start == "0":
        return v.parse(sch, version) is not None
    c = v.compare(sch, version, start)
    return c is not None and c >= 0


@functools.lru_cache(maxsize=8192)
def _canonical(versions: tuple[str, ...]) -> frozenset[str]:
    out = set(versions)
    for item in versions:
        try:
            out.add(canonicalize_version(item))
        except Exception:  # noqa: BLE001, S112  a version packaging cannot read is matched as written
            continue
    return frozenset(out)


def _listed(entry: Affected, version: str) -> bool:
    if version in entry.versions:
        return True
    if entry.ecosystem == PYPI:
        try:
            return canonicalize_version(version) in _canonical(entry.versions)
        except Exception:  # noqa: BLE001  as above
            return False
    return False


def _lowest_above(sch: str, version: str, candidates: list[str]) -> str | None:
    above = [c for c in candidates if (v.compare(sch, c, version) or 0) > 0]
    return v.lowest(sch, above)


def _osv(entry: Affected, version: str) -> Verdict | None:
    fixes: list[str] = []
    hit = False
    for rng in entry.ranges:
        sch = scheme(entry.ecosystem, rng.type)
        affected, fixed = _in_range(rng, sch, version)
        if affected:
            hit = True
            if fixed:
                fixes.append(fixed)
    if not hit and entry.versions and _listed(entry, version):
        hit = True
        fixes = [b for rng in entry.ranges for k, b in rng.events if k == "fixed"]
        fixes = [_lowest_above(scheme(entry.ecosystem), version, fixes)] if fixes else []
        fixes = [f for f in fixes if f]
    if not hit:
        return None
    fixed = v.lowest(scheme(entry.ecosystem), fixes)
    return Verdict(FIXED, fixed) if fixed else Verdict(AFFECTED)


def _npm(entry: Affected, version: str) -> Verdict | None:
    if not v.in_npm_range(entry.npm or "", version):
        return None
    if entry.npm_patched and v.in_npm_range(entry.npm_patched, version) is not False:
        return None  # patched, or cannot tell
    fixed = _lowest_above(v.SEMVER, version, v.range_lower_bounds(entry.npm_patched or ""))
    return Verdict(FIXED, fixed) if fixed else Verdict(AFFECTED)


def _cargo(entry: Affected, version: str) -> Verdict | None:
    if v.parse(v.SEMVER, version) is None:
        return None
    for req in (*entry.patched, *entry.unaffected):
        if v.cargo_matches(req, version) is not False:
            return None  # patched, unaffected, or a requirement it cannot read
    bounds = [b for req in entry.patched for b in v.range_lower_bounds(req)]
    fixed = _lowest_above(v.SEMVER, version, bounds)
    return Verdict(FIXED, fixed) if fixed else Verdict(AFFECTED)


def evaluate(entry: Affected, version: str) -> Verdict | None:
    """The verdict of `entry` for an installed `version`; None when it does not apply."""
    if entry.status == NOT_AFFECTED or entry.severity == "unimportant":
        return None
    if entry.npm is not None:
        return _npm(entry, version)
    if entry.ecosystem == CARGO:
        return _cargo(entry, version)
    if entry.ranges or entry.versions:
        return _osv(entry, version)
    return Verdict(entry.status if entry.status != FIXED else AFFECTED)
