"""Version ordering per ecosystem, on top of univers: the matcher's only way to compare versions.

Each ecosystem has its package manager's ordering, and getting it wrong means false findings or
missed ones: dpkg (epoch `1:`, `~` sorting before everything, `+deb12u3`), apk (`-rN`, letter
suffixes as in `1.1.1l`), rpm EVR (epoch, then rpmvercmp of version and release), PEP 440, npm
and Go semver (Go with its `v`, pseudo-versions and `+incompatible`), Maven (`.RELEASE`,
`.Final`, `2.13.2.1`). univers implements all of them; this module names them as *schemes*,
parses through a bounded cache (a re-evaluation of a thousand stored inventories compares the
same few thousand strings over and over, and univers' dpkg comparison costs ~30 µs a call), and
turns every failure into None: an unparsable version never raises out of here, and the matcher
treats None as "cannot tell", i.e. no finding.

Range grammars that are not OSV events live here too: npm semver ranges (the legacy npm
advisories' `vulnerable_versions`) through univers' NpmVersionRange, and Cargo requirements
(RustSec's `patched`/`unaffected`, e.g. `">= 0.12.3, < 0.13.0"`, `"^1.2"`), which univers does
not parse, evaluated here by Cargo's rules over univers' SemverVersion.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from univers.version_range import NpmVersionRange
from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    MavenVersion,
    PypiVersion,
    RpmVersion,
    SemverVersion,
)

# Schemes: the ordering a version string is compared with.
DEB = "deb"
APK = "apk"
RPM = "rpm"
PEP440 = "pypi"
SEMVER = "semver"  # npm, cargo, and OSV ranges of type SEMVER
GO = "go"  # semver with Go's spellings: "v1.2.3", "go1.21.3", "+incompatible"
MAVEN = "maven"

_CLASSES: dict[str, Any] = {
    DEB: DebianVersion,
    APK: AlpineLinuxVersion,
    RPM: RpmVersion,
    PEP440: PypiVersion,
    SEMVER: SemverVersion,
    GO: SemverVersion,
    MAVEN: MavenVersion,
}


def _clean(scheme: str, text: str) -> str:
    text = text.strip()
    if scheme == GO:
        text = text.removeprefix("go")  # the toolchain as `go version` spells it: go1.21.3
        text = text.removeprefix("v").removesuffix("+incompatible")
        if re.fullmatch(r"\d+\.\d+", text):  # go1.21 is the first release of 1.21, i.e. 1.21.0
            text += ".0"
    elif scheme == SEMVER:
        text = text.removeprefix("v").removeprefix("=")
    elif scheme == RPM:
        text = text.removeprefix("0:")
    return text


@functools.lru_cache(maxsize=262_144)
def parse(scheme: str, text: str) -> Any | None:
    """The univers Version for `text`, or None when the scheme cannot read it (never raises)."""
    cls = _CLASSES.get(scheme)
    if cls is None or not text:
        return None
    try:
        cleaned = _clean(scheme, text)
        if not cleaned:
            return None
        if scheme == APK and not AlpineLinuxVersion.is_valid(cleaned):
            return None
        return cls(cleaned)
    except Exception:  # noqa: BLE001  univers raises InvalidVersion, ValueError, TypeError… per scheme
        return None


_compared: dict[tuple[str, str, str], int | None] = {}
_COMPARED_MAX = 500_000


def compare(scheme: str, a: str, b: str) -> int | None:
    """-1, 0 or 1 as `a` sorts before, with or after `b`; None when either is unparsable."""
    key = (scheme, a, b)
    try:
        return _compared[key]
    except KeyError:
        pass
    va, vb = parse(scheme, a), parse(scheme, b)
    result: int | None
    if va is None or vb is None:
        result = None
    else:
        try:
            result = -1 if va < vb else (1 if va > vb else 0)
        except Exception:  # noqa: BLE001  a comparison univers cannot make is "cannot tell"
            result = None
    if len(_compared) >= _COMPARED_MAX:  # bounded: a long-running server sees ever new versions
        _compared.clear()
    _compared[key] = result
    return result


def valid(scheme: str, text: str) -> bool:
    return parse(scheme, text) is not None


def lowest(scheme: str, versions: list[str]) -> str | None:
    """The lowest of `versions` by `scheme` (unparsable ones last), or None for an empty list."""
    best: str | None = None
    for v in versions:
        if best is None:
            best = v
            continue
        c = compare(scheme, v, best)
        if (c is not None and c < 0) or (c is None and parse(scheme, best) is None):
            best = v
    return best


# npm ranges ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16_384)
def _npm_range(spec: str) -> Any | None:
    try:
        return NpmVersionRange.from_native(spec.strip())
    except Exception:  # noqa: BLE001  any spec univers cannot read is "cannot tell"
        return None


def in_npm_range(spec: str, version: str) -> bool | None:
    """Whether `version` satisfies the npm range `spec` ("<4.17.5", ">=2.0.0 <2.0.3 || >=3.0.0");
    None when either cannot be read."""
    rng, v = _npm_range(spec), parse(SEMVER, version)
    if rng is None or v is None:
        return None
    try:
        return bool(v in rng)
    except Exception:  # noqa: BLE001  as above
        return None


def range_lower_bounds(spec: str) -> list[str]:
    """The `>=X` bounds of an npm range or Cargo requirement ("patched_versions": ">=4.17.5"): the
    versions that start a fixed line, offered as the fixed version."""
    return re.findall(r">=\s*v?([0-9][^\s,|]*)", spec)


# Cargo requirements --------------------------------------------------------------------------------

_CARGO_COMPARATOR = re.compile(r"^\s*(>=|<=|>|<|=|\^|~)?\s*v?([0-9*xX][0-9A-Za-z.*+\-]*)\s*$")


def _padded(partial: str) -> tuple[str, int]:
    """"1.2" -> ("1.2.0", 2): a partial version and how many parts it gave."""
    core, sep, rest = partial.partition("-")
    parts = [p for p in core.split(".") if p not in ("*", "x", "X")]
    given = len(parts)
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3]) + (sep + rest if sep else ""), given


def _bump(version: str, index: int) -> str:
    parts = [int(p) for p in version.split("-")[0].split(".")[:3]]
    parts[index] += 1
    for i in range(index + 1, 3):
        parts[i] = 0
    return ".".join(map(str, parts))


def _cargo_bounds(op: str, partial: str) -> list[tuple[str, str]]:
    """One Cargo comparator as a conjunction of (operator, full version) bounds."""
    full, given = _padded(partial)
    if op in (">", ">=", "<", "<="):
        if given < 3 and op in (">", "<="):  # ">1.2" means >=1.3.0; "<=1.2" means <1.3.0
            return [(">=" if op == ">" else "<", _bump(full, max(given - 1, 0)))] if given else [(">=", "0.0.0")]
        return [(op, full)]
    if op == "=" or (op == "" and given < 3 and "*" in partial):
        if given == 3:
            return [("=", full)]
        return [(">=", full)] + ([("<", _bump(full, given - 1))] if given else [])
    if op == "~":
        upper = _bump(full, 1 if given >= 2 else 0)
        return [(">=", full), ("<", upper)]
    # caret, the default: the leftmost non-zero part may not change
    nums = [int(p) for p in full.split("-")[0].split(".")]
    if nums[0] > 0 or given == 1:
        upper = _bump(full, 0)
    elif nums[1] > 0 or given == 2:
        upper = _bump(full, 1)
    else:
        upper = _bump(full, 2)
    return [(">=", full), ("<", upper)]


@functools.lru_cache(maxsize=16_384)
def _cargo_requirement(req: str) -> tuple[tuple[str, str], ...] | None:
    bounds: list[tuple[str, str]] = []
    for comparator in req.split(","):
        if not comparator.strip() or comparator.strip() == "*":
            continue
        m = _CARGO_COMPARATOR.match(comparator)
        if not m:
            return None
        try:
            bounds.extend(_cargo_bounds(m.group(1) or "", m.group(2)))
        except ValueError:
            return None
    return tuple(bounds)


def cargo_matches(req: str, version: str) -> bool | None:
    """Whether `version` satisfies the Cargo requirement `req` (comma-separated comparators with
    Cargo's caret default); None when either cannot be read."""
    bounds = _cargo_requirement(req)
    if bounds is None or parse(SEMVER, version) is None:
        return None
    for op, bound in bounds:
        c = compare(SEMVER, version, bound)
        if c is None:
            return None
        ok = {"=": c == 0, ">": c > 0, ">=": c >= 0, "<": c < 0, "<=": c <= 0}[op]
        if not ok:
            return False
    return True
