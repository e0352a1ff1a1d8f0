"""Package URLs (purl-spec) of inventory packages, for SBOMs and advisory look-ups.

A package alone does not say which distribution it belongs to: an OsInfo, when given, supplies
the namespace ("debian", "ubuntu", "alpine", "wolfi", "almalinux"…) and a `distro` qualifier
("debian-12"; the codename where there is no VERSION_ID: "debian-trixie"). Without one (as
`Package.purl` calls it) the type's usual namespace is used: debian, alpine, redhat.

Per type: deb and apk keep the version as written (a dpkg epoch stays in it); rpm moves its
epoch to the `epoch` qualifier as purl-spec asks; npm scopes, Go module paths and Maven groups
become the namespace; PyPI names are normalised by packageurl-python (lowercase, "_" → "-").
"""

from __future__ import annotations

from packageurl import PackageURL

from dockyard.scan.model import APK, DEB, GO, MAVEN, NPM, OS_TYPES, RPM, OsInfo, Package

USUAL_NAMESPACE = {DEB: "debian", APK: "alpine", RPM: "redhat"}


def _distro(os: OsInfo) -> str | None:
    release = os.version or os.codename
    return f"{os.id}-{release}" if release else None


def _split(name: str, sep: str) -> tuple[str | None, str]:
    namespace, found, rest = name.rpartition(sep)
    return (namespace or None, rest) if found else (None, name)


def purl_of(package: Package, os: OsInfo | None = None) -> str:
    qualifiers: dict[str, str] = {}
    namespace: str | None = None
    name, version = package.name, package.version
    if package.type in OS_TYPES:
        namespace = os.id if os is not None and os.id else USUAL_NAMESPACE[package.type]
        if package.arch:
            qualifiers["arch"] = package.arch
        if package.type == RPM:
            epoch, found, rest = version.partition(":")
            if found and epoch.isdigit():
                version = rest
                qualifiers["epoch"] = epoch
        if os is not None and (distro := _distro(os)):
            qualifiers["distro"] = distro
    elif package.type == NPM and name.startswith("@"):
        namespace, name = _split(name, "/")
    elif package.type == GO:
        namespace, name = _split(name, "/")
    elif package.type == MAVEN:
        namespace, name = _split(name, ":")
    return PackageURL(type=package.type, namespace=namespace, name=name, version=version,
                      qualifiers=qualifiers or None).to_string()
