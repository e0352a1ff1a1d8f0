"""The scanner's vocabulary, shared by the analyzers, the advisory database and the matcher.

Pure data, no I/O. An inventory is what an image holds (its OS and its packages, each attributed
to the layer that brought it in); a finding is one advisory that applies to one package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Package types (purl types): what kind of package database a package came from.
DEB = "deb"
APK = "apk"
RPM = "rpm"
PYPI = "pypi"
NPM = "npm"
GO = "golang"
MAVEN = "maven"
CARGO = "cargo"
OS_TYPES = (DEB, APK, RPM)

# Severities, worst first; "unknown" when an advisory gives none.
SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def severity_rank(severity: str) -> int:
    """0 for critical … 4 for unknown (and for anything else)."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES) - 1


@dataclass(frozen=True, slots=True)
class OsInfo:
    """From /etc/os-release (or /usr/lib/os-release): ID, VERSION_ID, VERSION_CODENAME, PRETTY_NAME."""

    id: str  # "debian", "alpine", "almalinux", "ubuntu", "wolfi", "rhel", …
    version: str  # VERSION_ID as written: "12", "3.20.3", "9.4", "22.04"; "" when absent
    codename: str | None = None  # "bookworm"
    pretty_name: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package.

    `version` is the package manager's full version string: dpkg's with its epoch ("1:9.2p1-2"),
    apk's ("1.36.1-r29"), rpm's EVR ("1:3.0.7-27.el9", no "0:" epoch), PyPI/npm/Maven/crate
    versions as published, Go module versions with their "v" ("v0.17.0"; "devel" for the main
    module of a local build).
    `name` is the binary package (dpkg Package, apk P, rpm NAME), the PyPI project as written in
    its metadata, the npm name ("@scope/name"), the Go module path, "group:artifact" for Maven, the
    crate name. `source_name`/`source_version`: dpkg's Source (defaulting to the package and its
    version), apk's origin (o:), rpm's SOURCERPM name and version; None for language packages.
    """

    name: str
    version: str
    type: str  # DEB, APK, RPM, PYPI, NPM, GO, MAVEN, CARGO
    layer: int  # index into the manifest's layers of the layer that added it (this version of it)
    path: str  # the file it was read from, without a leading "/"
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None

    @property
    def purl(self) -> str:
        from dockyard.scan.purls import purl_of  # packageurl-python; imported where needed

        return purl_of(self)


@dataclass(frozen=True, slots=True)
class LayerInfo:
    digest: str  # as the manifest lists it
    created_by: str | None  # the image config history's command for this layer


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything a scan read from one image manifest; stored, so that a new advisory database
    re-evaluates it without reading a layer again."""

    os: OsInfo | None
    packages: tuple[Package, ...]
    layers: tuple[LayerInfo, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability of one package. `id` is the CVE id when any source names one (the other
    ids — GHSA, PYSEC, DSA, ALSA, RUSTSEC… — are in `aliases`), so that one CVE is reported once
    per package however many sources list it."""

    id: str
    aliases: tuple[str, ...]
    package: str
    installed_version: str
    type: str  # the package's type (DEB, PYPI, …)
    severity: str  # one of SEVERITIES
    layer: int
    fixed_version: str | None = None  # exactly the advisory's string, epoch included
    source_package: str | None = None
    fix_status: str = "fixed"  # "fixed" | "affected" (no fix yet) | "will_not_fix" (no-dsa, ignored) | "fix_deferred" (postponed)
    cvss_score: float | None = None
    title: str | None = None
    url: str | None = None
    sources: tuple[str, ...] = field(default=())  # advisory database sources that reported it
