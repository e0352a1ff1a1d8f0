"""The advisory database's own vocabulary: every importer turns its format into these records,
the store keeps them, the matcher evaluates them. Pure data and pure helpers, no I/O.

An `Advisory` is one record of one source (a PYSEC/GHSA/GO/ALSA/RUSTSEC/CGA record, a DSA or
DLA, a Debian/Ubuntu CVE entry, an Alpine secfix). Its `Affected` entries say which packages of
which ecosystem (and distro release) it concerns and how:

- `ranges`: OSV ordered events (`introduced`, `fixed`, `last_affected`, `limit`), each range with
  its type (SEMVER or ECOSYSTEM: which version ordering applies); a distro's "fixed in V" is the
  range `introduced 0, fixed V`; `versions` lists exact affected versions (OSV `versions`).
- `npm`: a legacy npm advisory's `vulnerable_versions` range, and its `patched_versions`.
- `patched` / `unaffected`: RustSec's Cargo requirements.
- `status`: for distro entries with no fixed version, what the distro decided: AFFECTED (no fix
  yet), WILL_NOT_FIX (Debian no-dsa/ignored, Ubuntu ignored, Wolfi fix-not-planned),
  FIX_DEFERRED (postponed), NOT_AFFECTED (an explicit statement: Debian not-affected, Alpine
  secfix key "0", Wolfi false positive, Red Hat known_not_affected): never reported.
- `tier`: Debian's precedence between lines (0: the CVE record's or the tracker's own line for a
  release, 1: a DSA/DLA line, 2: the unstable line that applies to releases without their own).

`bundle` marks advisories that announce fixes for several distinct vulnerabilities (a DSA, an
ALSA, an RHSA listing CVEs): the matcher reports each named CVE as its own finding, with the
bundle's id as an alias, instead of merging the CVEs into one.

Ecosystem keys (the first part of every index key): OS ecosystems name the distro and carry the
release in `Affected.release`; language ecosystems have release "".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

# Ecosystem keys.
DEBIAN = "debian"  # release: codename ("bookworm"); "" = the unstable (sid) line
UBUNTU = "ubuntu"  # release: codename ("focal")
ALPINE = "alpine"  # release: "3.20"
WOLFI = "wolfi"  # release: "" (rolling)
ALMALINUX = "almalinux"  # release: major ("9")
ROCKY = "rocky"  # release: major ("9")
RHEL = "rhel"  # release: major ("9")
PYPI = "pypi"
NPM = "npm"
GO = "go"
MAVEN = "maven"
CARGO = "cargo"
OS_ECOSYSTEMS = (DEBIAN, UBUNTU, ALPINE, WOLFI, ALMALINUX, ROCKY, RHEL)

# Statuses of an affected entry (the Finding.fix_status values, plus NOT_AFFECTED).
FIXED = "fixed"
AFFECTED = "affected"
WILL_NOT_FIX = "will_not_fix"
FIX_DEFERRED = "fix_deferred"
NOT_AFFECTED = "not_affected"

# Where an advisory's severity rating comes from (the matcher prefers VENDOR, then GHSA, then CVSS).
VENDOR = "vendor"
GHSA = "ghsa"

CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # "SEMVER" | "ECOSYSTEM"
    events: tuple[tuple[str, str], ...]  # (("introduced", "0"), ("fixed", "2.31.0"), …) in order


def fixed_in(version: str) -> tuple[Range, ...]:
    """A distro's "fixed in `version`": affected from the first version up to it."""
    return (Range("ECOSYSTEM", (("introduced", "0"), ("fixed", version))),)


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str
    package: str  # normalised (see normalise_name)
    release: str = ""
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    npm: str | None = None  # vulnerable_versions
    npm_patched: str | None = None
    patched: tuple[str, ...] = ()  # Cargo requirements
    unaffected: tuple[str, ...] = ()
    status: str = FIXED  # for entries without ranges: AFFECTED | WILL_NOT_FIX | FIX_DEFERRED | NOT_AFFECTED
    severity: str | None = None  # a per-package rating (Debian urgency, Ubuntu priority); "unimportant" hides it
    tier: int = 0

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {}
        if self.ranges:
            doc["r"] = [[r.type, [list(e) for e in r.events]] for r in self.ranges]
        for key, value in (("v", self.versions), ("p", self.patched), ("u", self.unaffected)):
            if value:
                doc[key] = list(value)
        for key, text in (("n", self.npm), ("np", self.npm_patched), ("sev", self.severity)):
            if text:
                doc[key] = text
        if self.status != FIXED:
            doc["s"] = self.status
        if self.tier:
            doc["t"] = self.tier
        return doc

    @classmethod
    def from_json(cls, ecosystem: str, release: str, package: str, doc: dict) -> Affected:
        return cls(
            ecosystem=ecosystem, package=package, release=release,
            ranges=tuple(Range(t, tuple((k, v) for k, v in ev)) for t, ev in doc.get("r", ())),
            versions=tuple(doc.get("v", ())), npm=doc.get("n"), npm_patched=doc.get("np"),
            patched=tuple(doc.get("p", ())), unaffected=tuple(doc.get("u", ())),
            status=doc.get("s", FIXED), severity=doc.get("sev"), tier=doc.get("t", 0),
        )


@dataclass(slots=True)
class Advisory:
    id: str
    aliases: tuple[str, ...] = ()  # other ids of the same vulnerability (for a bundle: the CVEs it fixes)
    related: tuple[str, ...] = ()  # ids shown with it that name other things (the DSA that fixed a CVE)
    title: str | None = None
    description: str | None = None
    url: str | None = None
    severity: str | None = None  # one of SEVERITIES' ratings, from the source
    severity_kind: str | None = None  # VENDOR | GHSA
    cvss_vector: str | None = None
    cvss_score: float | None = None
    published: str | None = None  # ISO 8601 as the source gives it
    modified: str | None = None
    bundle: bool = False
    affected: list[Affected] = field(default_factory=list)

    @property
    def cves(self) -> list[str]:
        return sorted({i for i in (self.id, *self.aliases) if CVE_RE.match(i)})

    def merge(self, other: Advisory) -> None:
        """Fold a second record with the same id from the same source into this one (an Alpine
        CVE fixed in several packages, a DSA seen in two files)."""
        self.aliases = tuple(dict.fromkeys(self.aliases + tuple(a for a in other.aliases if a != self.id)))
        self.related = tuple(dict.fromkeys(self.related + other.related))
        self.affected.extend(a for a in other.affected if a not in self.affected)
        for name in ("title", "description", "url", "severity", "severity_kind", "cvss_vector", "cvss_score",
                     "published", "modified"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))
        self.bundle = self.bundle or other.bundle


def iso(value: object) -> str | None:
    """A record date as ISO 8601 text: YAML hands out datetime objects, JSON strings; the Go
    vulndb's placeholder 0001-01-01 counts as no date."""
    if value is None or value == "":
        return None
    if isinstance(value, (datetime, date)):
        text = value.isoformat()
    else:
        text = str(value).strip()
    return None if not text or text.startswith("0001-") else text


# Names ----------------------------------------------------------------------------------------------


def normalise_name(ecosystem: str, name: str) -> str:
    """The index key of a package name: PEP 503 for PyPI, crates.io's folding for Cargo (case and
    `-`/`_` are one name there), lower case for distro packages; npm, Go and Maven names as written."""
    name = name.strip()
    if ecosystem == PYPI:
        return re.sub(r"[-_.]+", "-", name).lower()
    if ecosystem == CARGO:
        return name.lower().replace("_", "-")
    if ecosystem in OS_ECOSYSTEMS:
        return name.lower()
    return name


# Severity -------------------------------------------------------------------------------------------

_RATINGS = {
    "critical": "critical", "important": "high", "high": "high", "moderate": "medium", "medium": "medium",
    "low": "low", "negligible": "low", "minor": "low",
}


def rating(text: str | None) -> str | None:
    """A vendor's word for severity as one of SEVERITIES ("Important" → high, "MODERATE" → medium,
    Ubuntu's "negligible" → low); None for anything else ("not yet assigned", "untriaged")."""
    if not text:
        return None
    return _RATINGS.get(text.strip().rstrip("*").lower())


def severity_of_score(score: float | None) -> str | None:
    """CVSS v3/v4 qualitative rating of a base score."""
    if score is None:
        return None
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0:
        return "low"
    return None


def cvss_score(vector: str | None) -> float | None:
    """Base score of a CVSS v3.x or v4.0 vector (the `cvss` library), None for v2 or anything
    it cannot read."""
    if not vector:
        return None
    try:
        if vector.startswith("CVSS:3."):
            from cvss import CVSS3

            return float(CVSS3(vector).base_score)
        if vector.startswith("CVSS:4.0/"):
            from cvss import CVSS4

            return float(CVSS4(vector).base_score)
    except Exception:  # noqa: BLE001  cvss raises its own CVSSError subclasses, and others on odd input
        return None
    return None


def best_cvss(vectors: list[str]) -> tuple[str | None, float | None]:
    """The vector to show and its score: v3 preferred (what most tools and the distros quote),
    then v4."""
    scored = [(v, cvss_score(v)) for v in vectors if v]
    scored = [(v, s) for v, s in scored if s is not None]
    if not scored:
        return None, None
    scored.sort(key=lambda vs: (not vs[0].startswith("CVSS:3."), -(vs[1] or 0)))
    return scored[0]


def id_rank(identifier: str) -> tuple[int, str]:
    """Which id names a finding when no CVE does: GHSA first (widely known), then the rest."""
    for rank, prefix in enumerate(("CVE-", "GHSA-", "GO-", "PYSEC-", "RUSTSEC-")):
        if identifier.startswith(prefix):
            return rank, identifier
    return 9, identifier
