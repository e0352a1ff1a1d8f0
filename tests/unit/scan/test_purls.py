"""scan/purls.py"""

from __future__ import annotations

import pytest

from dockyard.scan.model import APK, CARGO, DEB, GO, MAVEN, NPM, PYPI, RPM, OsInfo, Package
from dockyard.scan.purls import purl_of

BOOKWORM = OsInfo(id="debian", version="12", codename="bookworm")


def pkg(kind: str, name: str, version: str, arch: str | None = None) -> Package:
    return Package(name=name, version=version, type=kind, layer=0, path="x", arch=arch)


@pytest.mark.parametrize(("package", "os", "expected"), [
    (pkg(DEB, "openssl", "3.0.11-1~deb12u2", "amd64"), BOOKWORM,
     "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"),
    (pkg(DEB, "zlib1g", "1:1.2.13.dfsg-1", "amd64"), None, "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"),
    (pkg(DEB, "bash", "5.2.21-2", "arm64"), OsInfo(id="debian", version="", codename="trixie"),
     "pkg:deb/debian/bash@5.2.21-2?arch=arm64&distro=debian-trixie"),
    (pkg(DEB, "libc6", "2.35-0ubuntu3.8", "amd64"), OsInfo(id="ubuntu", version="22.04"),
     "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.8?arch=amd64&distro=ubuntu-22.04"),
    (pkg(APK, "musl", "1.2.5-r0", "x86_64"), OsInfo(id="alpine", version="3.20.3"),
     "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"),
    (pkg(APK, "glibc", "2.40-r1"), None, "pkg:apk/alpine/glibc@2.40-r1"),
    (pkg(RPM, "openssl-libs", "1:3.0.7-27.el9", "x86_64"), OsInfo(id="almalinux", version="9.4"),
     "pkg:rpm/almalinux/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=almalinux-9.4&epoch=1"),
    (pkg(RPM, "bash", "5.1.8-9.el9"), None, "pkg:rpm/redhat/bash@5.1.8-9.el9"),
    (pkg(PYPI, "Flask_SQLAlchemy", "3.1.1"), BOOKWORM, "pkg:pypi/flask-sqlalchemy@3.1.1"),
    (pkg(NPM, "@babel/core", "7.24.0"), None, "pkg:npm/%40babel/core@7.24.0"),
    (pkg(NPM, "express", "4.19.2"), None, "pkg:npm/express@4.19.2"),
    (pkg(GO, "golang.org/x/net", "v0.17.0"), None, "pkg:golang/golang.org/x/net@v0.17.0"),
    (pkg(GO, "stdlib", "v1.21.3"), None, "pkg:golang/stdlib@v1.21.3"),
    (pkg(MAVEN, "org.apache.logging.log4j:log4j-core", "2.14.1"), None,
     "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
    (pkg(CARGO, "regex", "1.10.4"), None, "pkg:cargo/regex@1.10.4"),
])
def test_purls(package: Package, os: OsInfo | None, expected: str) -> None:
    assert purl_of(package, os) == expected


def test_package_purl_property_uses_the_usual_namespace() -> None:
    assert pkg(DEB, "openssl", "3.0.11-1", "amd64").purl == "pkg:deb/debian/openssl@3.0.11-1?arch=amd64"
