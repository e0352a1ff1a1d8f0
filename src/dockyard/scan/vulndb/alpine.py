"""Alpine's secdb (and Wolfi's, which has the same shape): which apk version fixed which CVE.

Two layouts of the same data:
- the secdb documents (`v3.11/main.yaml` of the old alpine-secdb repository, or the JSON
  secdb.alpinelinux.org serves today as `v3.20/main.json`, and Wolfi's `security.json`):
  `distroversion`, `reponame`, `packages[].pkg.{name, secfixes}`;
- aquasecurity/vuln-list's one file per package (`alpine/3.20/main/openssl.json`): the same
  `name`, `secfixes` and `distroversion` at the top level.

`name` is the origin (source) package: an installed apk matches through its origin (`o:`),
so libcrypto3 and libssl3 match openssl's entries. `secfixes` maps a fixed apk version to the
ids it fixed; an installed version lower than it (apk ordering, `-rN` included) is affected. The
key "0" means the CVE never affected Alpine's package: kept as an explicit not-affected entry.
Alpine rates nothing: findings from here carry no severity of their own.

One Advisory per id (per CVE) and source, its affected entries one per package and release.
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.scan.vulndb.records import ALPINE, NOT_AFFECTED, WOLFI, Advisory, Affected, fixed_in, normalise_name

_ID = re.compile(r"\b(CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|[A-Z][A-Z0-9]*-\d[0-9A-Za-z.:-]*)")


def is_secdb(doc: Any) -> bool:
    return isinstance(doc, dict) and "packages" in doc and isinstance(doc["packages"], (list, type(None))) and (
        "distroversion" in doc or "reponame" in doc or "apkurl" in doc)


def is_package_file(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("secfixes"), dict) and isinstance(doc.get("name"), str)


def _target(doc: dict[str, Any]) -> tuple[str, str]:
    """(ecosystem, release): Wolfi's secdb names its own URLs and has no release."""
    where = f"{doc.get('urlprefix', '')} {doc.get('apkurl', '')}".lower()
    if "wolfi" in where or "chainguard" in where:
        return WOLFI, ""
    version = str(doc.get("distroversion") or "").strip().removeprefix("v")
    return ALPINE, ".".join(version.split(".")[:2])


def _secfixes(eco: str, release: str, name: str, secfixes: Any, out: dict[str, Advisory]) -> None:
    if not isinstance(secfixes, dict):
        return
    package = normalise_name(eco, name)
    for version, ids in secfixes.items():
        fixed = str(version).strip()  # YAML may read a key as a number; apk versions are strings
        if not fixed or not isinstance(ids, list):
            continue
        if fixed in ("0", "0.0", "None"):
            entry = Affected(eco, package, release, status=NOT_AFFECTED)
        else:
            entry = Affected(eco, package, release, ranges=fixed_in(fixed))
        for item in ids:
            for ident in _ID.findall(str(item))[:1]:  # "CVE-2019-1234 (comment)" or "CVE-… CVE-…"
                advisory = out.get(ident)
                if advisory is None:
                    url = f"https://security.alpinelinux.org/vuln/{ident}" if eco == ALPINE else None
                    advisory = out[ident] = Advisory(id=ident, url=url)
                if entry not in advisory.affected:
                    advisory.affected.append(entry)


def parse_secdb(doc: dict[str, Any]) -> list[Advisory]:
    eco, release = _target(doc)
    out: dict[str, Advisory] = {}
    for item in doc.get("packages") or ():
        pkg = item.get("pkg") if isinstance(item, dict) else None
        if isinstance(pkg, dict) and pkg.get("name"):
            _secfixes(eco, release, str(pkg["name"]), pkg.get("secfixes"), out)
    return list(out.values())


def parse_package_file(doc: dict[str, Any]) -> list[Advisory]:
    eco, release = _target(doc)
    out: dict[str, Advisory] = {}
    _secfixes(eco, release, doc["name"], doc.get("secfixes"), out)
    return list(out.values())
