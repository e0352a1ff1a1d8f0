"""Red Hat CSAF 2.0 documents: security advisories (RHSA, `csaf_security_advisory`) and VEX
(`csaf_vex`, one document per CVE).

The product tree names products (a RHEL stream, by CPE) and components (an RPM by NEVRA or
purl); a relationship joins them into the product ids that `vulnerabilities[].product_status`
lists under `fixed`, `known_affected` and `known_not_affected`. This importer maps only what
maps onto a container's OS: components of the base RHEL streams (`cpe:/o:redhat:enterprise_linux:9`,
`cpe:/a:redhat:enterprise_linux:9::appstream`, …) → ecosystem "rhel", release "9", matched by
rpm name with EVR ordering. Extended-support streams (AUS, E4S, TUS, EUS), layered products
(OpenShift, JBoss…) and container images are left out. `under_investigation` says nothing yet.

One Advisory per CVE; the RHSA id is shown as related. Severity is Red Hat's impact for that CVE
(`threats[category=impact]`), else the document's aggregate severity; CVSS from `scores[]`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from dockyard.scan.vulndb.records import (
    AFFECTED,
    NOT_AFFECTED,
    RHEL,
    VENDOR,
    Advisory,
    Affected,
    best_cvss,
    fixed_in,
    normalise_name,
    rating,
)

_STREAM = re.compile(r"^cpe:/[ao]:redhat:enterprise_linux:(\d+)(?:[:.]|$)")
_ARCHES = "noarch|src|x86_64|i686|aarch64|ppc64le|s390x|ppc64|s390"
_NEVRA = re.compile(rf"^(?P<name>.+?)-(?:(?P<epoch>\d+):)?(?P<version>[^-:]+)-(?P<release>[^-:]+?)"
                    rf"(?:\.(?:{_ARCHES}))?$")


def looks_like(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("document"), dict) and "csaf_version" in doc["document"]


def _component(name: str, helper: dict[str, Any] | None) -> tuple[str, str | None]:
    """(rpm name, EVR or None) of a component, from its purl when it has one, else its NEVRA."""
    purl = (helper or {}).get("purl")
    if isinstance(purl, str) and purl.startswith("pkg:rpm/"):
        parsed = urlparse(purl)
        path = unquote(parsed.path.split("/", 1)[-1] if "/" in parsed.path else parsed.path)
        rpm, _, version = path.rpartition("/")[2].partition("@")
        epoch = parse_qs(parsed.query).get("epoch", [""])[0]
        if version and epoch and epoch != "0":
            version = f"{epoch}:{version}"
        return rpm, version or None
    m = _NEVRA.match(name)
    if m and any(c.isdigit() for c in m.group("version")):
        epoch = m.group("epoch")
        evr = f"{m.group('version')}-{m.group('release')}"
        return m.group("name"), (f"{epoch}:{evr}" if epoch and epoch != "0" else evr)
    return name, None


def _products(tree: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """product id → (release, rpm name, EVR) for every component of a base RHEL stream."""
    streams: dict[str, str] = {}
    components: dict[str, tuple[str, str | None]] = {}

    def walk(branches: list[Any]) -> None:
        for branch in branches or ():
            product = branch.get("product") or {}
            pid = product.get("product_id")
            helper = product.get("product_identification_helper") or {}
            if pid:
                m = _STREAM.match(str(helper.get("cpe") or ""))
                if m:
                    streams[pid] = m.group(1)
                elif branch.get("category") in ("product_version", "architecture") or helper.get("purl"):
                    components[pid] = _component(str(product.get("name") or pid), helper)
            walk(branch.get("branches") or [])

    walk(tree.get("branches") or [])
    out: dict[str, tuple[str, str, str | None]] = {}
    for rel in tree.get("relationships") or ():
        full = rel.get("full_product_name") or {}
        release = streams.get(rel.get("relates_to_product_reference"))
        component = components.get(rel.get("product_reference"))
        if release and component and full.get("product_id"):
            out[full["product_id"]] = (release, component[0], component[1])
    return out


def parse(doc: dict[str, Any]) -> list[Advisory]:
    document = doc["document"]
    tracking = document.get("tracking") or {}
    doc_id = str(tracking.get("id") or "")
    aggregate = rating(str((document.get("aggregate_severity") or {}).get("text") or ""))
    products = _products(doc.get("product_tree") or {})
    out = []
    for vuln in doc.get("vulnerabilities") or ():
        cve = vuln.get("cve")
        if not cve:
            continue
        impact = next((t.get("details") for t in vuln.get("threats") or () if t.get("category") == "impact"), None)
        severity = rating(str(impact or "")) or aggregate
        vectors = [str((s.get("cvss_v3") or {}).get("vectorString") or "") for s in vuln.get("scores") or ()]
        vector, score = best_cvss(vectors)
        advisory = Advisory(
            id=str(cve), related=(doc_id,) if doc_id and doc_id != cve else (),
            title=vuln.get("title") or document.get("title"), url=f"https://access.redhat.com/security/cve/{cve}",
            severity=severity, severity_kind=VENDOR if severity else None, cvss_vector=vector, cvss_score=score,
            published=vuln.get("release_date") or tracking.get("initial_release_date"),
            modified=tracking.get("current_release_date"),
        )
        status = vuln.get("product_status") or {}
        seen = set()
        for key, kind in (("fixed", None), ("known_affected", AFFECTED), ("known_not_affected", NOT_AFFECTED)):
            for pid in status.get(key) or ():
                if pid not in products:
                    continue
                release, rpm, evr = products[pid]
                name = normalise_name(RHEL, rpm)
                if kind is None:
                    if not evr:
                        continue
                    entry = Affected(RHEL, name, release, ranges=fixed_in(evr))
                else:
                    entry = Affected(RHEL, name, release, status=kind)
                if entry not in seen:
                    seen.add(entry)
                    advisory.affected.append(entry)
        if advisory.affected:
            out.append(advisory)
    return out
