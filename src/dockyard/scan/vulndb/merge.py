"""From the entries that apply to one package to its findings. Pure.

Two steps the matcher runs for every (ecosystem, release, names, version) it looks up:

- `resolve_debian`: Debian's precedence. The candidates (the release's lines and the unstable
  lines) are grouped per CVE (a DSA/DLA counts for each CVE it lists); a CVE marked
  `unimportant` for the package on any line is dropped; of the rest only the lowest tier
  speaks: the CVE record's line for the release (0), else a DSA/DLA line (1), else unstable (2).
- `merge_hits`: one finding per vulnerability. Each hit contributes its merge keys — a record's
  id and aliases, or, for a bundle (DSA, ALSA, RHSA…), one CVE — and hits sharing a key are one
  vulnerability (union-find). The finding's id is its CVE (the one most hits name when a record
  names two), else the best-known other id (GHSA first). Fixed version: the lowest the hits
  offer (all are above the installed version, since the hits apply); with none, the distro's
  decision (will_not_fix, fix_deferred) over a bare "affected". Severity: a vendor rating, else
  GitHub's, else the CVSS score → rating, else "unknown".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from dockyard.scan import versions
from dockyard.scan.model import severity_rank
from dockyard.scan.vulndb.records import (
    AFFECTED,
    ALMALINUX,
    ALPINE,
    CVE_RE,
    DEBIAN,
    FIX_DEFERRED,
    FIXED,
    GHSA,
    RHEL,
    UBUNTU,
    VENDOR,
    WILL_NOT_FIX,
    Affected,
    id_rank,
    severity_of_score,
)
from dockyard.scan.vulndb.rules import Verdict

_CVE_URLS = {
    DEBIAN: "https://security-tracker.debian.org/tracker/{}",
    UBUNTU: "https://ubuntu.com/security/{}",
    ALPINE: "https://security.alpinelinux.org/vuln/{}",
    RHEL: "https://access.redhat.com/security/cve/{}",
    ALMALINUX: "https://access.redhat.com/security/cve/{}",
}
_DECISIONS = (WILL_NOT_FIX, FIX_DEFERRED, AFFECTED)


@dataclass(frozen=True, slots=True)
class Summary:
    """An advisory as the index keeps it in memory (no description: read on demand)."""

    source: str
    id: str
    aliases: tuple[str, ...]
    related: tuple[str, ...]
    title: str | None
    url: str | None
    severity: str | None
    severity_kind: str | None
    cvss_vector: str | None
    cvss_score: float | None
    published: str | None
    modified: str | None
    bundle: bool
    cves: tuple[str, ...] = ()  # the CVE ids among id and aliases, sorted

    @classmethod
    def of(cls, *fields: object) -> Summary:
        summary = cls(*fields)  # type: ignore[arg-type]
        ids = (summary.id, *summary.aliases)
        object.__setattr__(summary, "cves", tuple(sorted({i for i in ids if i.startswith("CVE-") and CVE_RE.match(i)})))
        return summary


@dataclass(frozen=True, slots=True)
class Hit:
    summary: Summary
    verdict: Verdict
    cve: str | None = None  # the CVE Debian's resolution picked this hit for
    severity: str | None = None  # the entry's own rating (a Debian/Ubuntu line)


@dataclass(frozen=True, slots=True)
class Proto:
    """A finding without the package's own fields."""

    id: str
    aliases: tuple[str, ...]
    severity: str
    fixed_version: str | None
    fix_status: str
    cvss_score: float | None
    title: str | None
    url: str | None
    sources: tuple[str, ...]


def resolve_debian(candidates: list[tuple[Affected, Summary]]) -> list[tuple[Affected, Summary, str]]:
    by_cve: dict[str, list[tuple[Affected, Summary]]] = defaultdict(list)
    for entry, summary in candidates:
        keys = summary.cves if summary.bundle else [summary.id]
        for key in keys or [summary.id]:
            by_cve[key].append((entry, summary))
    out = []
    for cve, items in by_cve.items():
        if any(entry.severity == "unimportant" for entry, _ in items):
            continue
        tier = min(entry.tier for entry, _ in items)
        out.extend((entry, summary, cve) for entry, summary in items if entry.tier == tier)
    return out


def _keys(hit: Hit) -> tuple[frozenset[str], tuple[str, ...]]:
    """(merge keys, ids only shown) of a hit."""
    s = hit.summary
    if hit.cve is not None and s.bundle:
        return frozenset((hit.cve,)), (s.id, *s.related)
    if s.bundle and s.cves:
        return frozenset(s.cves), (s.id, *s.related)  # split per CVE by the caller
    return frozenset((s.id, *s.aliases)), s.related


def _units(hits: list[Hit]) -> list[tuple[frozenset[str], tuple[str, ...], Hit]]:
    units = []
    for hit in hits:
        keys, shown = _keys(hit)
        if hit.summary.bundle and hit.cve is None and len(keys) > 1:
            units.extend((frozenset((cve,)), shown, hit) for cve in sorted(keys))
        else:
            units.append((keys, shown, hit))
    return units


def _groups(units: list[tuple[frozenset[str], tuple[str, ...], Hit]]) -> list[list[int]]:
    parent = list(range(len(units)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, (keys, _, _) in enumerate(units):
        for key in keys:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(units)):
        groups[find(i)].append(i)
    return list(groups.values())


def _worst(ratings: list[str]) -> str | None:
    return min(ratings, key=severity_rank) if ratings else None


def merge_hits(hits: list[Hit], ecosystem: str, installed: str, scheme: str, cve_cvss: dict[str, float]) -> list[Proto]:
    units = _units(hits)
    protos = []
    for group in _groups(units):
        members = [units[i] for i in group]
        keys = set().union(*(k for k, _, _ in members))
        named = Counter(k for keys_, _, _ in members for k in keys_ if k.startswith("CVE-"))
        if named:
            ident = min(named, key=lambda c: (-named[c], c))
        else:
            ident = min(keys, key=id_rank)
        shown = {i for _, extra, _ in members for i in extra}
        aliases = tuple(sorted((keys | shown) - {ident}, key=id_rank))
        group_hits = [h for _, _, h in members]
        fixes = [h.verdict.fixed for h in group_hits if h.verdict.status == FIXED and h.verdict.fixed]
        if fixes:
            fixed, status = versions.lowest(scheme, fixes), FIXED
        else:
            found = {h.verdict.status for h in group_hits}
            fixed, status = None, next((d for d in _DECISIONS if d in found), AFFECTED)
        vendor = [h.severity for h in group_hits if h.severity] + [
            h.summary.severity for h in group_hits if h.summary.severity and h.summary.severity_kind == VENDOR]
        ghsa = [h.summary.severity for h in group_hits if h.summary.severity and h.summary.severity_kind == GHSA]
        scores = [h.summary.cvss_score for h in group_hits if h.summary.cvss_score]
        if not scores:
            scores = [cve_cvss[k] for k in keys if k in cve_cvss]
        score = max(scores) if scores else None
        severity = _worst(vendor) or _worst(ghsa) or severity_of_score(score) or "unknown"
        ordered = sorted(group_hits, key=lambda h: (h.summary.id != ident, h.summary.bundle, h.summary.source))
        title = next((h.summary.title for h in ordered if h.summary.title), None)
        own = next((h.summary.url for h in ordered if h.summary.id == ident and h.summary.url), None)
        template = _CVE_URLS.get(ecosystem) if CVE_RE.match(ident) else None
        url = own or (template.format(ident) if template else None) or next(
            (h.summary.url for h in ordered if h.summary.url), None) or f"https://osv.dev/vulnerability/{ident}"
        protos.append(Proto(ident, aliases, severity, fixed, status, score, title, url,
                            tuple(sorted({h.summary.source for h in group_hits}))))
    protos.sort(key=lambda p: (severity_rank(p.severity), p.id))
    return protos
