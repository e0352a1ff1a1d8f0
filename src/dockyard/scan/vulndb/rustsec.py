"""RustSec advisories (rustsec/advisory-db `crates/<crate>/RUSTSEC-*.md`): Markdown with a TOML
front matter in a ```toml fence, read with tomllib.

`[advisory] id, package, date, aliases, cvss, url` and `[versions] patched = [">= 1.2.3"]`,
`unaffected = ["< 0.12"]`: Cargo requirements. A crate version is affected unless it satisfies
one of them (an empty `patched` means no fixed release). Withdrawn advisories are dropped, and
so are `informational` ones (`unmaintained`, `unsound`, `notice`): cargo-audit reports those as
warnings about a crate, not as vulnerabilities of a version, and so does this scanner (it does
not report them at all). The title is the Markdown's first heading.
"""

from __future__ import annotations

import re
import tomllib

from dockyard.scan.vulndb.records import CARGO, Advisory, Affected, cvss_score, iso, normalise_name

_FRONT = re.compile(r"^\s*```toml\s*\n(?P<toml>.*?)\n```\s*\n?(?P<body>.*)$", re.DOTALL)


class Skipped(Exception):
    """A well-formed advisory this scanner does not report (withdrawn or informational)."""


def parse(text: str) -> Advisory:
    m = _FRONT.match(text)
    if not m:
        raise ValueError("no TOML front matter")
    meta = tomllib.loads(m.group("toml"))
    info = meta.get("advisory") or {}
    if not info.get("id") or not info.get("package"):
        raise ValueError("no [advisory] id/package")
    if info.get("withdrawn"):
        raise Skipped("withdrawn")
    if info.get("informational"):
        raise Skipped(f"informational ({info['informational']})")
    versions = meta.get("versions") or {}
    body = m.group("body").strip()
    heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE)
    vector = str(info["cvss"]) if info.get("cvss") else None
    date = iso(info.get("date"))
    return Advisory(
        id=str(info["id"]), aliases=tuple(str(a) for a in info.get("aliases") or ()),
        related=tuple(str(r) for r in info.get("related") or ()),
        title=heading.group(1).strip() if heading else None, description=body or None,
        url=str(info.get("url") or f"https://rustsec.org/advisories/{info['id']}.html"),
        cvss_vector=vector, cvss_score=cvss_score(vector), published=date, modified=date,
        affected=[Affected(CARGO, normalise_name(CARGO, str(info["package"])),
                           patched=tuple(str(p) for p in versions.get("patched") or ()),
                           unaffected=tuple(str(u) for u in versions.get("unaffected") or ()))],
    )
