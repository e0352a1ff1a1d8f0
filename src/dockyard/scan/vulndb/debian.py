"""The Debian security tracker, in the three shapes it is published in.

- The tracker's own text files, `data/{CVE,DSA,DLA}/list` (salsa security-tracker): a header
  (`[03 Oct 2023] DSA-5514-1 glibc - security update`, or `CVE-2023-4911 (description…)`),
  then `{CVE-… …}` cross references and package lines: `[bookworm] - glibc 2.36-9+deb12u3`
  for a release, `- glibc <unfixed> (bug #1053254; low)` for unstable.
- aquasecurity/vuln-list-debian's `tracker/{CVE,DSA,DLA}/…json`: the same lines, parsed
  (`Annotations[]` with `Release`, `Package`, `Kind`, `Version`, `Severity`).
- The tracker's JSON export (security-tracker.debian.org/tracker/data/json): per source package,
  per CVE, per release the resolved state (`status` resolved/open/undetermined,
  `fixed_version`, `urgency`, `nodsa`, `nodsa_reason`).

Lines are about **source** packages (installed binaries match through dpkg's `Source:`) and
use dpkg version ordering. Each line becomes an Affected entry with a tier, because the status
for a release comes from (in this order) the CVE record's line for that release (tier 0; the
JSON export is all tier 0), else a DSA/DLA line for that release (tier 1: CVE records are
sometimes older than the DSA that fixed them), else the unstable line (tier 2; a fix there
applies to releases that have no line of their own).

Kinds: a version = fixed in it; `<unfixed>`/`<undetermined>` = affected, no fix yet;
`<not-affected>` = never reported; `<no-dsa>`, `<ignored>` and `<end-of-life>` = reported as
will_not_fix; `<postponed>` = fix_deferred; `<removed>` = the package left that suite: not
reported from that line. Urgency `unimportant` (on the line, or the unstable line's when the
release line has none) means Debian does not consider it a vulnerability of the package (a
build-time tool, documentation, an issue that does not apply): such entries are **not reported**.
A DSA/DLA is a bundle: each CVE it lists becomes its own finding.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from dockyard.scan.vulndb.records import (
    AFFECTED,
    DEBIAN,
    FIX_DEFERRED,
    NOT_AFFECTED,
    VENDOR,
    WILL_NOT_FIX,
    Advisory,
    Affected,
    fixed_in,
    normalise_name,
    rating,
)

_STATUS = {
    "unfixed": AFFECTED, "undetermined": AFFECTED, "not-affected": NOT_AFFECTED, "no-dsa": WILL_NOT_FIX,
    "ignored": WILL_NOT_FIX, "end-of-life": WILL_NOT_FIX, "postponed": FIX_DEFERRED, "removed": NOT_AFFECTED,
}
_SKIP_RELEASES = {"experimental", "itp"}
_HEADER = re.compile(r"^(?:\[(?P<date>\d{1,2} \w{3} \d{4})\]\s+)?"  # [03 Oct 2023]
                     r"(?P<id>(?:CVE|DSA|DLA|DTSA|TEMP)-[\w-]+)\s*(?P<rest>.*)$")
_LINE = re.compile(r"^\s+(?:\[(?P<release>[\w-]+)\]\s+)?-\s+(?P<package>[\w.+-]+)"  # [bookworm] - glibc
                   r"(?:\s+(?P<what><[\w-]+>|\S+))?(?:\s+\((?P<notes>.*)\))?\s*$")  # 2.36-9+deb12u3 (bug #1)
_URL = "https://security-tracker.debian.org/tracker/{}"


def _severity(notes: str | None) -> str | None:
    for token in re.split(r"[;,]\s*", notes or ""):
        token = token.strip().lower()
        if token == "unimportant" or rating(token):
            return token if token == "unimportant" else rating(token)
    return None


def _entry(package: str, release: str | None, what: str, severity: str | None, bundle: bool) -> Affected | None:
    release = (release or "").strip()
    if release == "sid":  # an explicit unstable line is the unstable line
        release = ""
    if release in _SKIP_RELEASES:
        return None
    tier = 1 if bundle else (0 if release else 2)
    name = normalise_name(DEBIAN, package)
    kind = what.strip("<>") if what.startswith("<") else None
    if kind is not None:
        status = _STATUS.get(kind)
        if status is None:
            return None
        return Affected(DEBIAN, name, release, status=status, severity=severity, tier=tier)
    if what == "0":
        return Affected(DEBIAN, name, release, status=NOT_AFFECTED, tier=tier)
    return Affected(DEBIAN, name, release, ranges=fixed_in(what), severity=severity, tier=tier)


def _title(ident: str, rest: str) -> str | None:
    rest = rest.strip()
    if rest.startswith(("(", "[")) and rest.endswith((")", "]")):
        rest = rest[1:-1].strip()
    if ident.startswith(("DSA-", "DLA-", "DTSA-")):
        return rest or None
    return rest.removesuffix("...").strip() or None


def _new(ident: str, rest: str, date: str | None) -> Advisory:
    published = None
    if date:
        try:
            published = datetime.strptime(date, "%d %b %Y").date().isoformat()
        except ValueError:
            published = None
    return Advisory(id=ident, title=_title(ident, rest), url=_URL.format(ident), published=published,
                    bundle=not ident.startswith(("CVE-", "TEMP-")))


def _finish(advisory: Advisory) -> None:
    """Urgency: Debian's rating of the CVE, taken from the unstable line when present."""
    for entry in advisory.affected:
        if entry.severity and entry.severity != "unimportant" and advisory.severity is None:
            advisory.severity, advisory.severity_kind = entry.severity, VENDOR


def parse_list(text: str) -> list[Advisory]:
    """The text `data/{CVE,DSA,DLA}/list` files."""
    out: list[Advisory] = []
    current: Advisory | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            m = _HEADER.match(line)
            if m and "XXXX" not in m.group("id"):
                current = _new(m.group("id"), m.group("rest"), m.group("date"))
                out.append(current)
            else:
                current = None
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("{"):
            ids = [i for i in stripped.strip("{}").split() if i.startswith("CVE-")]
            if current.bundle:
                current.aliases = tuple(dict.fromkeys(current.aliases + tuple(ids)))
            else:
                current.related = tuple(dict.fromkeys(current.related + tuple(stripped.strip("{}").split())))
            continue
        m = _LINE.match(line)
        if m and m.group("what"):
            entry = _entry(m.group("package"), m.group("release"), m.group("what"), _severity(m.group("notes")),
                           current.bundle)
            if entry is not None:
                current.affected.append(entry)
    for advisory in out:
        _finish(advisory)
    return [a for a in out if a.affected]


def is_vuln_list(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("Header"), dict) and "Annotations" in doc


def parse_vuln_list(doc: dict[str, Any]) -> Advisory | None:
    """One aquasecurity/vuln-list-debian `tracker/…/*.json` record."""
    header = doc["Header"]
    ident = str(header.get("ID") or "")
    if not ident or "XXXX" in ident:
        return None
    m = _HEADER.match(str(header.get("Original") or ident))
    advisory = _new(ident, str(header.get("Description") or ""), m.group("date") if m else None)
    for note in doc.get("Annotations") or ():
        if not isinstance(note, dict):
            continue
        if note.get("Type") == "xref":
            bugs = [str(b) for b in note.get("Bugs") or ()]
            if advisory.bundle:
                advisory.aliases += tuple(b for b in bugs if b.startswith("CVE-"))
            else:
                advisory.related += tuple(bugs)
        elif note.get("Type") == "package" and note.get("Package"):
            kind = str(note.get("Kind") or "")
            what = str(note.get("Version") or "") if kind == "fixed" else f"<{kind}>"
            if not what:
                continue
            severity = note.get("Severity")
            severity = "unimportant" if severity == "unimportant" else rating(str(severity or ""))
            entry = _entry(str(note["Package"]), note.get("Release"), what, severity, advisory.bundle)
            if entry is not None:
                advisory.affected.append(entry)
    _finish(advisory)
    return advisory if advisory.affected else None


def is_tracker_json(doc: Any) -> bool:
    if not isinstance(doc, dict) or not doc:
        return False
    first = next(iter(doc.values()))
    if not isinstance(first, dict) or not first:
        return False
    record = next(iter(first.values()))
    return isinstance(record, dict) and isinstance(record.get("releases"), dict)


def _tracker_entry(package: str, release: str, state: dict[str, Any]) -> Affected | None:
    urgency = str(state.get("urgency") or "").rstrip("*").strip()
    severity = "unimportant" if urgency == "unimportant" else rating(urgency)
    status = state.get("status")
    fixed = str(state.get("fixed_version") or "")
    if status == "resolved":
        if not fixed or fixed == "0":
            return Affected(DEBIAN, package, release, status=NOT_AFFECTED)
        return Affected(DEBIAN, package, release, ranges=fixed_in(fixed), severity=severity)
    if status == "open" and urgency == "end-of-life":
        return Affected(DEBIAN, package, release, status=WILL_NOT_FIX)
    if status == "open" and "nodsa" in state:
        reason = str(state.get("nodsa_reason") or "")
        return Affected(DEBIAN, package, release, status=FIX_DEFERRED if reason == "postponed" else WILL_NOT_FIX,
                        severity=severity)
    if status in ("open", "undetermined"):
        return Affected(DEBIAN, package, release, status=AFFECTED, severity=severity)
    return None


def parse_tracker_json(doc: dict[str, Any]) -> list[Advisory]:
    """security-tracker.debian.org/tracker/data/json: {source package: {CVE: {releases: …}}}."""
    out: dict[str, Advisory] = {}
    for package, issues in doc.items():
        if not isinstance(issues, dict):
            continue
        name = normalise_name(DEBIAN, package)
        for ident, issue in issues.items():
            if not isinstance(issue, dict) or "XXXX" in ident:
                continue
            advisory = out.get(ident)
            if advisory is None:
                description = str(issue.get("description") or "") or None
                advisory = out[ident] = Advisory(id=ident, title=description, url=_URL.format(ident),
                                                 bundle=not ident.startswith(("CVE-", "TEMP-")))
            for release, state in (issue.get("releases") or {}).items():
                if isinstance(state, dict) and release not in _SKIP_RELEASES:
                    entry = _tracker_entry(name, release, state)
                    if entry is not None:
                        advisory.affected.append(entry)
    for advisory in out.values():
        _finish(advisory)
    return [a for a in out.values() if a.affected]
