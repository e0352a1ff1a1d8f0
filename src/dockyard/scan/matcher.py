"""Installed packages × advisories → findings.

`AdvisoryIndex.load(db_path)` reads the whole advisory database (scan/vulndb/store.py) into
dicts keyed by (ecosystem, release, normalised package name), once per file identity (inode,
mtime, size): a scan after `dockyard vulndb update` sees the new file, every other scan reuses
the loaded index. A missing file is an empty index (db_id "").

How a package finds its advisories (ecosystem keys: scan/vulndb/records.py):
- dpkg packages: Debian (OsInfo id "debian", release = VERSION_CODENAME or the codename of
  VERSION_ID 12 → bookworm) or Ubuntu (codename) by **source** package and source version;
  Debian lines are resolved per CVE by tier (the release's own line, else a DSA/DLA line for the
  release, else the unstable line), and a CVE Debian marks `unimportant` for the package is not
  reported.
- apk packages: Alpine (release = major.minor of VERSION_ID) by origin; Wolfi ("wolfi",
  "chainguard") by origin, then name.
- rpm packages: AlmaLinux, Rocky Linux, RHEL (release = major of VERSION_ID) by binary rpm name
  and by source rpm name. Other distros (CentOS, Oracle, Fedora, openSUSE…) match nothing: no
  data is imported for them.
- language packages: PyPI (PEP 503 names), npm, Go modules (and "stdlib" for the toolchain a
  binary was built with), Maven "group:artifact", crates (crates.io's name folding).

One finding per vulnerability, package and installed version: records of all sources are
merged through their ids (a PYSEC and a GHSA record naming the same CVE give one finding whose
id is the CVE and whose aliases hold the others). Errata that bundle CVEs (DSA, ALSA, RHSA) give
one finding per CVE. The fixed version is an advisory's own string; among several, the lowest.
Severity: the distro's rating (Debian urgency, Ubuntu priority, AlmaLinux/Red Hat impact), else
GitHub's rating, else the CVSS v3/v4 base score of any record of that vulnerability in the
database, else "unknown".
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from dockyard.scan import model
from dockyard.scan.model import Finding, OsInfo, Package
from dockyard.scan.vulndb import records as r
from dockyard.scan.vulndb.merge import Hit, Proto, Summary, merge_hits, resolve_debian
from dockyard.scan.vulndb.rules import evaluate, scheme
from dockyard.scan.vulndb.store import connect

DEBIAN_CODENAMES = {"8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm",
                    "13": "trixie", "14": "forky"}
UBUNTU_CODENAMES = {"14.04": "trusty", "16.04": "xenial", "18.04": "bionic", "18.10": "cosmic", "19.04": "disco",
                    "19.10": "eoan", "20.04": "focal", "20.10": "groovy", "21.04": "hirsute", "21.10": "impish",
                    "22.04": "jammy", "22.10": "kinetic", "23.04": "lunar", "23.10": "mantic", "24.04": "noble",
                    "24.10": "oracular", "25.04": "plucky", "25.10": "questing"}
_LANGUAGE = {model.PYPI: r.PYPI, model.NPM: r.NPM, model.GO: r.GO, model.MAVEN: r.MAVEN, model.CARGO: r.CARGO}
_RPM_DISTROS = {"almalinux": r.ALMALINUX, "rocky": r.ROCKY, "rhel": r.RHEL}
_MEMO_MAX = 200_000


@dataclass(frozen=True, slots=True)
class AdvisoryDetails:
    """What the console shows for a vulnerability id (CVE, GHSA, DSA…), merged over sources."""

    id: str
    aliases: tuple[str, ...]
    title: str | None
    description: str | None
    url: str | None
    severity: str
    cvss_score: float | None
    cvss_vector: str | None
    published: str | None
    modified: str | None
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one installed package is looked up."""

    ecosystem: str
    releases: tuple[str, ...]
    names: tuple[str, ...]
    version: str  # the version the advisories speak of (the source version for dpkg)


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def target(os_info: OsInfo | None, pkg: Package) -> Target | None:
    """The ecosystem, releases and names to look `pkg` up under; None when nothing can match."""
    if pkg.type in _LANGUAGE:
        eco = _LANGUAGE[pkg.type]
        return Target(eco, ("",), (r.normalise_name(eco, pkg.name),), pkg.version)
    if os_info is None:
        return None
    distro = os_info.id.lower()
    source = pkg.source_name or pkg.name
    if pkg.type == model.DEB and distro == "debian":
        release = os_info.codename or DEBIAN_CODENAMES.get(os_info.version.split(".")[0], "sid")
        return Target(r.DEBIAN, (release, ""), (source.lower(),), pkg.source_version or pkg.version)
    if pkg.type == model.DEB and distro == "ubuntu":
        release = os_info.codename or UBUNTU_CODENAMES.get(_major_minor(os_info.version), "")
        return Target(r.UBUNTU, (release,), (source.lower(),), pkg.source_version or pkg.version) if release else None
    if pkg.type == model.APK and distro == "alpine":
        return Target(r.ALPINE, (_major_minor(os_info.version),), (source.lower(),), pkg.version)
    if pkg.type == model.APK and distro in ("wolfi", "chainguard"):
        return Target(r.WOLFI, ("",), tuple(dict.fromkeys((source.lower(), pkg.name.lower()))), pkg.version)
    if pkg.type == model.RPM and distro in _RPM_DISTROS:
        names = tuple(dict.fromkeys((pkg.name.lower(), source.lower())))
        return Target(_RPM_DISTROS[distro], (os_info.version.split(".")[0],), names, pkg.version)
    return None


class AdvisoryIndex:
    """The advisory database in memory. Thread-safe for `match` (the memo is a plain dict whose
    worst race is computing an entry twice)."""

    _cache: ClassVar[dict[str, tuple[tuple[int, int, int], AdvisoryIndex]]] = {}
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, db_path: Path | None = None, db_id: str = "", updated_at: datetime | None = None) -> None:
        self.db_path = db_path
        self.db_id = db_id
        self.updated_at = updated_at
        # (ecosystem, release, package) -> [[Affected, or its JSON text until first used], Summary]
        self._entries: dict[tuple[str, str, str], list[list[Any]]] = defaultdict(list)
        self._by_id: dict[str, list[Summary]] = defaultdict(list)
        self._cve_cvss: dict[str, float] = {}
        self._memo: dict[Target, tuple[Proto, ...]] = {}
        self._findings: dict[tuple[Target, Package], tuple[Finding, ...]] = {}

    # loading ----------------------------------------------------------------------------------

    @classmethod
    def load(cls, db_path: Path | str) -> AdvisoryIndex:
        path = Path(db_path)
        key = str(path.resolve())
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return cls(path)
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        with cls._cache_lock:
            cached = cls._cache.get(key)
            if cached is not None and cached[0] == identity:
                return cached[1]
            index = cls(path)
            index._read(path)
            cls._cache[key] = (identity, index)
            return index

    def _read(self, path: Path) -> None:
        conn = connect(path)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            self.db_id = meta.get("db_id", "")
            self.updated_at = datetime.fromisoformat(meta["updated_at"]) if meta.get("updated_at") else None
            summaries: dict[tuple[str, str], Summary] = {}
            for row in conn.execute("SELECT source, id, aliases, related, title, url, severity, severity_kind, "
                                    "cvss_vector, cvss_score, published, modified, bundle FROM advisories"):
                s = Summary.of(row[0], row[1], tuple(row[2].split()), tuple(row[3].split()), row[4], row[5],
                            row[6], row[7], row[8], row[9], row[10], row[11], bool(row[12]))
                summaries[(s.source, s.id)] = s
                for ident in (s.id, *s.aliases):
                    self._by_id[ident].append(s)
                if s.cvss_score and not s.bundle:
                    for cve in s.cves:
                        self._cve_cvss[cve] = max(self._cve_cvss.get(cve, 0.0), s.cvss_score)
            for source, adv_id, eco, release, package, rule in conn.execute(
                    "SELECT source, advisory_id, ecosystem, release, package, rule FROM affected"):
                summary = summaries.get((source, adv_id))
                if summary is not None:  # the rule is parsed on first use: most are never looked at
                    self._entries[(eco, release, package)].append([rule, summary])
        finally:
            conn.close()

    # matching ---------------------------------------------------------------------------------

    def match(self, os: OsInfo | None, packages: Sequence[Package]) -> list[Finding]:
        """The findings of `packages` installed on `os` (None: no OS packages can match)."""
        findings: list[Finding] = []
        for pkg in packages:
            where = target(os, pkg)
            if where is None:
                continue
            # The same package (name, version, layer, path) recurs across the images of a registry:
            # its findings are immutable and shared, which saves most of a re-evaluation's time.
            key = (where, pkg)
            found = self._findings.get(key)
            if found is None:
                found = self._findings_of(where, pkg)
                if len(self._findings) >= _MEMO_MAX:
                    self._findings.clear()
                self._findings[key] = found
            findings.extend(found)
        return findings

    def _findings_of(self, where: Target, pkg: Package) -> tuple[Finding, ...]:
        protos = self._memo.get(where)
        if protos is None:
            protos = self._protos(where)
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[where] = protos
        return tuple(Finding(
            id=p.id, aliases=p.aliases, package=pkg.name, installed_version=pkg.version, type=pkg.type,
            severity=p.severity, layer=pkg.layer, fixed_version=p.fixed_version, source_package=pkg.source_name,
            fix_status=p.fix_status, cvss_score=p.cvss_score, title=p.title, url=p.url, sources=p.sources,
        ) for p in protos)

    def _protos(self, where: Target) -> tuple[Proto, ...]:
        candidates: list[tuple[r.Affected, Summary]] = []
        for release in where.releases:
            for name in where.names:
                for item in self._entries.get((where.ecosystem, release, name), ()):
                    if isinstance(item[0], str):
                        item[0] = r.Affected.from_json(where.ecosystem, release, name, json.loads(item[0]))
                    candidates.append((item[0], item[1]))
        candidates = list(dict.fromkeys(candidates))  # a binary and its source rpm may share entries
        if not candidates:
            return ()
        keyed = resolve_debian(candidates) if where.ecosystem == r.DEBIAN else [(e, s, None) for e, s in candidates]
        hits = []
        for entry, summary, cve in keyed:
            verdict = evaluate(entry, where.version)
            if verdict is not None:
                hits.append(Hit(summary, verdict, cve, entry.severity))
        return tuple(merge_hits(hits, where.ecosystem, where.version, scheme(where.ecosystem), self._cve_cvss))

    # details ----------------------------------------------------------------------------------

    def advisory(self, ident: str) -> AdvisoryDetails | None:
        """Details of a vulnerability by any of its ids, merged over the records naming it."""
        found = self._by_id.get(ident)
        if not found:
            return None
        own = sorted(found, key=lambda s: (s.id != ident, s.bundle))
        aliases = sorted({i for s in own if not s.bundle for i in (s.id, *s.aliases)} - {ident}, key=r.id_rank)
        description, vector = None, None
        if self.db_path is not None:
            try:
                conn = connect(self.db_path)
                try:
                    for s in own:
                        row = conn.execute("SELECT description, cvss_vector FROM advisories WHERE source=? AND id=?",
                                           (s.source, s.id)).fetchone()
                        if row is not None:
                            description = description or row[0]
                            vector = vector or row[1]
                finally:
                    conn.close()
            except sqlite3.Error:  # the file was replaced or removed meanwhile: show what is in memory
                description = vector = None
        ratings = [s.severity for s in own if s.severity]
        scores = [s.cvss_score for s in own if s.cvss_score]
        if not scores and ident in self._cve_cvss:
            scores = [self._cve_cvss[ident]]
        severity = min(ratings, key=model.severity_rank) if ratings else r.severity_of_score(max(scores, default=None))
        return AdvisoryDetails(
            id=ident, aliases=tuple(aliases), title=next((s.title for s in own if s.title), None),
            description=description, url=next((s.url for s in own if s.url), None) or f"https://osv.dev/vulnerability/{ident}",
            severity=severity or "unknown", cvss_score=max(scores) if scores else None, cvss_vector=vector,
            published=min((s.published for s in own if s.published), default=None),
            modified=max((s.modified for s in own if s.modified), default=None),
            sources=tuple(sorted({s.source for s in own})),
        )
