"""The Node.js security working group's legacy npm advisories (nodejs/security-wg
`vuln/npm/<n>.json`, 2013–2020, frozen): `module_name`, `vulnerable_versions` and
`patched_versions` as npm semver ranges (`<4.17.5`, `>=2.0.0 <2.0.3 || >=3.0.0 <3.1.1`), `cves`,
`cvss_vector`/`cvss_score` (the score is computed from the vector, as for every source: some
records' stated scores do not match their vectors; the stated one is used only without a vector).

An installed version is affected when it satisfies `vulnerable_versions` and not
`patched_versions`. The ids are the working group's own, `NSWG-ECO-<n>`; the fixed version
shown is the lowest `>=` bound of `patched_versions` above the installed version. `index.json`
repeats every record and is skipped by the layout detection; `vuln/core` (Node.js runtime
advisories) has no package an image inventory lists and is skipped too.
"""

from __future__ import annotations

from typing import Any

from dockyard.scan.vulndb.records import NPM, Advisory, Affected, cvss_score, normalise_name


def looks_like(doc: Any) -> bool:
    return isinstance(doc, dict) and "module_name" in doc and "vulnerable_versions" in doc


def parse(doc: dict[str, Any]) -> Advisory | None:
    vulnerable = str(doc.get("vulnerable_versions") or "").strip()
    if not vulnerable or not doc.get("module_name"):
        return None
    ident = f"NSWG-ECO-{doc.get('id')}"
    vector = str(doc["cvss_vector"]) if doc.get("cvss_vector") else None
    score = cvss_score(vector)
    if score is None and isinstance(doc.get("cvss_score"), (int, float)) and doc["cvss_score"] > 0:
        score = float(doc["cvss_score"])
    return Advisory(
        id=ident, aliases=tuple(str(c) for c in doc.get("cves") or ()), title=doc.get("title") or None,
        description=doc.get("overview") or None,
        url=f"https://github.com/nodejs/security-wg/blob/main/vuln/npm/{doc.get('id')}.json",
        cvss_vector=vector, cvss_score=score,
        published=str(doc.get("publish_date") or doc.get("created_at") or "") or None,
        modified=str(doc.get("updated_at") or "") or None,
        affected=[Affected(NPM, normalise_name(NPM, str(doc["module_name"])), npm=vulnerable,
                           npm_patched=str(doc.get("patched_versions") or "").strip() or None)],
    )
