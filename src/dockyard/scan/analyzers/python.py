"""Python distributions: the metadata that pip, uv, poetry and distro packages install.

`NAME.dist-info/METADATA` (wheels, PEP 376), `NAME.egg-info/PKG-INFO` and a `NAME.egg-info`
file (setuptools, `setup.py install`, many distro packages), `NAME.egg/EGG-INFO/PKG-INFO`
(eggs). All are email-style headers; only Name and Version are read, from the header block (the
long description that may follow is not parsed). Found anywhere in the filesystem: site-packages
of the system Python, /usr/local, virtualenvs. Names are kept as the metadata writes them.
"""

from __future__ import annotations

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.model import PYPI, Package


def want(path: str) -> Want | None:
    directory, _, base = path.rpartition("/")
    if base == "METADATA":
        return _WANT if directory.endswith(".dist-info") else None
    if base == "PKG-INFO":
        return _WANT if directory.endswith(".egg-info") or directory.endswith(".egg/EGG-INFO") else None
    return _WANT if base.endswith(".egg-info") else None


def parse_headers(text: str) -> dict[str, str]:
    """The header block of a core-metadata file: "Key: value" lines up to the first blank line,
    continuation lines folded; the first occurrence of a key wins."""
    headers: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last is not None:
                headers[last] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            break  # not a header: the body starts here
        last = key.strip().lower()
        if last in headers:
            last = None
        else:
            headers[last] = value.strip()
    return headers


def parse(path: str, data: bytes) -> Findings:
    headers = parse_headers(data.decode("utf-8", "replace"))
    name, version = headers.get("name", ""), headers.get("version", "")
    if not name or not version:
        return Findings()
    return Findings(packages=(Package(name=name, version=version, type=PYPI, layer=UNATTRIBUTED, path=path),))


_WANT = Want("python", Read.BYTES, parse)
