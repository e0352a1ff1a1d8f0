"""Debian packages: dpkg's status database, and distroless's one-file-per-package variant.

`var/lib/dpkg/status` holds one stanza per package dpkg knows, installed or not: only those whose
Status says "installed" count (its third word: "install ok installed", and also "hold ok
installed" for packages held by apt-mark, which are just as installed; "deinstall ok
config-files" and half-installed ones are not). Distroless images have no status file but
`var/lib/dpkg/status.d/NAME` files, each with one or more stanzas and no Status field (its
`NAME.md5sums` files are not stanzas).

Package is the binary package; Source, when present, names the source package ("Source: name"
or "Source: name (version)" when the source version differs), which is what Debian's security
tracker keys its advisories on; without it the source is the binary itself. Versions are kept as
written, epoch included ("1:9.2p1-2+deb12u3").
"""

from __future__ import annotations

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.model import DEB, Package

STATUS = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d/"


def want(path: str) -> Want | None:
    if path == STATUS:
        return _WANT
    if path.startswith(STATUS_DIR) and "/" not in path[len(STATUS_DIR):] and not path.endswith(".md5sums"):
        return _WANT
    return None


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-style stanzas separated by blank lines. Continuation lines (starting with a space
    or tab: Description, Conffiles…) are appended to their field, which no caller here needs
    but which must not be taken for fields."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                current[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def is_installed(stanza: dict[str, str]) -> bool:
    status = stanza.get("Status")
    if status is None:
        return True  # status.d stanzas have none: every one is installed
    words = status.split()
    return len(words) == 3 and words[2] == "installed"


def package_of(stanza: dict[str, str], path: str) -> Package | None:
    name, version = stanza.get("Package", ""), stanza.get("Version", "")
    if not name or not version:
        return None
    source_name, source_version = name, version
    if source := stanza.get("Source", "").strip():
        source_name, _, rest = source.partition(" ")
        rest = rest.strip()
        if rest.startswith("(") and rest.endswith(")") and len(rest) > 2:
            source_version = rest[1:-1].strip()
    return Package(name=name, version=version, type=DEB, layer=UNATTRIBUTED, path=path,
                   source_name=source_name, source_version=source_version,
                   arch=stanza.get("Architecture") or None)


def parse(path: str, data: bytes) -> Findings:
    packages = []
    for stanza in parse_stanzas(data.decode("utf-8", "replace")):
        if is_installed(stanza) and (package := package_of(stanza, path)) is not None:
            packages.append(package)
    return Findings(packages=tuple(packages))


_WANT = Want("dpkg", Read.BYTES, parse)
