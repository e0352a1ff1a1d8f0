"""Ubuntu's CVE tracker (git.launchpad.net/ubuntu-cve-tracker, `active/` and `retired/`): one
text file per CVE, RFC 822-like fields (`Candidate`, `PublicDate`, `Priority`, `CVSS`,
`Description` on indented lines) and one line per release and **source** package:
`<release>_<srcpkg>: <status> (<note>)`.

Statuses: `released (V)` = fixed in V (dpkg ordering); `needed`, `needs-triage`, `pending` =
affected, no fix published yet; `deferred` = fix_deferred; `ignored` = will_not_fix;
`not-affected` and `DNE` (the package does not exist in that release) are never reported.
Only plain release codenames are kept (`focal`, `jammy`): `upstream`, `devel`, `snap` and the
ESM streams (`trusty/esm`) are not what a container's apt sources carry. `Priority` (or a
package's own `Priority_<pkg>`) is Ubuntu's rating: negligible → low, then as written.
"""

from __future__ import annotations

import re

from dockyard.scan.vulndb.records import (
    AFFECTED,
    FIX_DEFERRED,
    NOT_AFFECTED,
    UBUNTU,
    VENDOR,
    WILL_NOT_FIX,
    Advisory,
    Affected,
    best_cvss,
    fixed_in,
    normalise_name,
    rating,
)

_STATUS = {"needed": AFFECTED, "needs-triage": AFFECTED, "pending": AFFECTED, "deferred": FIX_DEFERRED,
           "ignored": WILL_NOT_FIX, "not-affected": NOT_AFFECTED, "DNE": NOT_AFFECTED}
_PSEUDO = {"upstream", "devel", "snap", "product", "esm"}
_PACKAGE_LINE = re.compile(r"^(?P<release>[a-z]+)_(?P<package>[\w.+-]+):\s*"  # bionic_openssl:
                           r"(?P<status>[\w-]+)(?:\s+\((?P<note>[^)]*)\))?")  # released (1.1.0g-2ubuntu4.3)


def looks_like(text: str) -> bool:
    return text.startswith(("Candidate:", "PublicDateAtUSN:", "PublicDate:")) or "\nCandidate: CVE-" in text[:2000]


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1].isspace() and key is not None:
            fields[key] += "\n" + line.strip()
        elif ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
        else:
            key = None
    return fields


def parse(text: str) -> Advisory | None:
    fields = _fields(text)
    ident = fields.get("Candidate", "").strip()
    if not ident:
        raise ValueError("not an Ubuntu CVE tracker file")
    priority = rating(fields.get("Priority", "").split()[0] if fields.get("Priority") else None)
    vectors = re.findall(r"CVSS:[34]\.\d/\S+", fields.get("CVSS", ""))
    vector, score = best_cvss(vectors)
    description = " ".join(fields.get("Description", "").split()) or None
    published = fields.get("PublicDate", "").split(" ")[0] or None
    advisory = Advisory(
        id=ident, title=(description[:200] if description else None), description=description,
        url=f"https://ubuntu.com/security/{ident}", severity=priority, severity_kind=VENDOR if priority else None,
        cvss_vector=vector, cvss_score=score, published=published,
    )
    for line in text.splitlines():
        m = _PACKAGE_LINE.match(line)
        if not m or m.group("release") in _PSEUDO:
            continue
        package = normalise_name(UBUNTU, m.group("package"))
        status, note = m.group("status"), (m.group("note") or "").strip()
        own = fields.get(f"Priority_{m.group('package')}")
        severity = rating(own.split()[0]) if own else None
        if status == "released":
            if not note or " " in note:
                continue
            entry = Affected(UBUNTU, package, m.group("release"), ranges=fixed_in(note), severity=severity)
        elif status in _STATUS:
            entry = Affected(UBUNTU, package, m.group("release"), status=_STATUS[status], severity=severity)
        else:
            continue
        advisory.affected.append(entry)
    return advisory if advisory.affected else None
