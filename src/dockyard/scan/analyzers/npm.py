"""npm packages: what `node_modules` holds, and the lock files of applications.

`…/node_modules/NAME/package.json` and `…/node_modules/@SCOPE/NAME/package.json` are the
packages installed (at any depth, nested node_modules included); other package.json files (a
package's own sub-directories, the application's) are not packages and are not read. One
without both a name and a version is skipped.

A `package-lock.json` outside node_modules (lockfileVersion 1, 2 or 3) lists what the
application asked for; it is read too, so that an image that ships the lock but installs the
packages elsewhere (bundled, or in a later stage) still shows them. The same package is then
listed twice, once from node_modules and once from the lock: `dedupe` drops a lock's entry when
node_modules next to it (same directory) holds the same name and version, and keeps it
otherwise. That is a simple rule: it does not resolve where in the tree each lock entry lives,
so a lock entry whose version differs from what is installed stays (the lock says so). Lock
entries marked `dev` (not installed by `npm ci --omit=dev`) and `link` (a workspace's own
packages) are skipped, as is the root project itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.model import NPM, Package

NODE_MODULES = "node_modules"
LOCK = "package-lock.json"


def want(path: str) -> Want | None:
    if not path.endswith("json"):
        return None
    parts = path.split("/")
    if parts[-1] == "package.json":
        if len(parts) >= 3 and parts[-3] == NODE_MODULES and not parts[-2].startswith((".", "@")):
            return _WANT_PACKAGE
        if len(parts) >= 4 and parts[-4] == NODE_MODULES and parts[-3].startswith("@"):
            return _WANT_PACKAGE
    elif parts[-1] == LOCK and NODE_MODULES not in parts:
        return _WANT_LOCK
    return None


def _load(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None


def _package(name: Any, version: Any, path: str) -> Package | None:
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return Package(name=name, version=version, type=NPM, layer=UNATTRIBUTED, path=path)


def parse_package_json(path: str, data: bytes) -> Findings:
    doc = _load(data)
    if not isinstance(doc, dict) or (package := _package(doc.get("name"), doc.get("version"), path)) is None:
        return Findings()
    return Findings(packages=(package,))


def _installable(version: Any) -> bool:
    # Registry versions start with a digit; "file:…", "github:…", URLs are not packages of the registry.
    return isinstance(version, str) and version[:1].isdigit()


def _v1_entries(dependencies: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    if not isinstance(dependencies, dict) or depth > 64:
        return
    for name, entry in dependencies.items():
        if isinstance(entry, dict) and not entry.get("dev"):
            yield name, entry.get("version")
            yield from _v1_entries(entry.get("dependencies"), depth + 1)


def _v2_entries(packages: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, entry in packages.items():
        if not key or not isinstance(entry, dict) or entry.get("dev") or entry.get("link"):
            continue
        if f"{NODE_MODULES}/" not in key:
            continue  # a workspace's own directory
        name = entry.get("name") or key.rpartition(f"{NODE_MODULES}/")[2]
        yield name, entry.get("version")


def parse_lock(path: str, data: bytes) -> Findings:
    doc = _load(data)
    if not isinstance(doc, dict):
        return Findings()
    packages = doc.get("packages")
    entries = _v2_entries(packages) if isinstance(packages, dict) else _v1_entries(doc.get("dependencies"))
    found: dict[tuple[str, str], Package] = {}
    for name, version in entries:
        if _installable(version) and (package := _package(name, version, path)) is not None:
            found.setdefault((package.name, package.version), package)
    return Findings(packages=tuple(found.values()))


def root_of(path: str) -> str:
    """The application directory a node_modules package or a lock belongs to: "app/" for
    "app/node_modules/x/package.json" and for "app/package-lock.json"."""
    parts = path.split("/")[:-1]
    if NODE_MODULES in parts:
        parts = parts[: parts.index(NODE_MODULES)]
    return "".join(f"{part}/" for part in parts)


def dedupe(packages: Iterable[Package]) -> list[Package]:
    """Drops lock entries that node_modules in the same directory also holds (see above)."""
    packages = list(packages)
    installed = {(p.name, p.version, root_of(p.path)) for p in packages
                 if p.type == NPM and not p.path.endswith(LOCK)}
    return [p for p in packages
            if not (p.type == NPM and p.path.endswith(LOCK) and (p.name, p.version, root_of(p.path)) in installed)]


_WANT_PACKAGE = Want("npm", Read.BYTES, parse_package_json)
_WANT_LOCK = Want("npm", Read.BYTES, parse_lock)
