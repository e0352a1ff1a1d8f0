"""Alpine (and Wolfi, Chainguard) packages: apk's `lib/apk/db/installed`.

One stanza per installed package, blank-line separated, each line a one-letter key: P name,
V version ("1.36.1-r29"), A architecture, o origin (the source package, the aports directory
that advisories name; defaults to the package itself). Other lines (F, R, Z: files and
checksums) are most of the file and are skipped.
"""

from __future__ import annotations

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.model import APK, Package

INSTALLED = "lib/apk/db/installed"


def want(path: str) -> Want | None:
    return _WANT if path == INSTALLED else None


def _package(fields: dict[str, str], path: str) -> Package | None:
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        return None
    return Package(name=name, version=version, type=APK, layer=UNATTRIBUTED, path=path,
                   source_name=fields.get("o") or name, source_version=version, arch=fields.get("A") or None)


def parse(path: str, data: bytes) -> Findings:
    packages = []
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines() + [""]:
        if not line.strip():
            if fields and (package := _package(fields, path)) is not None:
                packages.append(package)
            fields = {}
        elif len(line) >= 2 and line[1] == ":" and line[0] in "PVAo":
            fields[line[0]] = line[2:].strip()
    return Findings(packages=tuple(packages))


_WANT = Want("apk", Read.BYTES, parse)
