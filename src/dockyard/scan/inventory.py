"""What an image holds: its layers read bottom-up and merged as the container's filesystem
would be, and the packages found in the files that survive, each attributed to a layer.

Merging (the OCI image spec's "applying changesets"): a path written in layer i replaces what
lower layers had there (a file, and a whole directory when layer i puts a non-directory in its
place); `.wh.NAME` deletes NAME, file or directory, from the lower layers; `.wh..wh..opq` hides
everything the lower layers have in its directory. Whiteouts act on lower layers only, never on
what their own layer adds. Only the files an analyzer read are remembered (`_Chain`), so the
state is small whatever the size of the image.

Attribution: a package is attributed to the layer that added it, in this version. Its file is
followed down through the layers that wrote it (without a deletion in between), and the package
goes to the lowest layer of the topmost contiguous run of copies that list the same package and
version. For a database that every package operation rewrites (dpkg's status, apk's installed,
the rpmdb), an upgrade in layer 3 attributes the new version to layer 3, while a package
untouched since layer 0 stays at layer 0 although layer 3 rewrote the file. The same rule serves
per-package files (a dist-info, a package.json, a jar, a binary): that is the layer whose copy
survived, unless a later layer wrote an identical copy over it (`chmod -R`, a second COPY of the
same tree), which does not move the package up to that layer.

Links: symlinks are not followed (every database is read at its real path; the inventory reads
the usual alternative locations instead: usr/lib/os-release, usr/lib/sysimage/rpm). A hard link
at a path an analyzer wants gets the findings of its target when the target was read earlier in
the same layer; otherwise it is noted as not read (tar streams hold a hard link's content only
at its target, which has gone by).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dockyard.scan import analyzers
from dockyard.scan.analyzers import Findings, Read, Want, npm, os_release
from dockyard.scan.layers import (EntryType, LayerSource, Limits, Member, ScanFailed, Unsupported, ancestors,
                                  human_size, walk_layer)
from dockyard.scan.model import OS_TYPES, Inventory, LayerInfo, OsInfo, Package

__all__ = ["LayerSource", "Limits", "Outcome", "ScanFailed", "Unsupported", "build_inventory"]

MAX_NOTES = 100

_Key = tuple[str, str, str, str | None]


@dataclass(frozen=True)
class Outcome:
    inventory: Inventory
    notes: tuple[str, ...]  # e.g. files skipped for size


def _key(package: Package) -> _Key:
    return (package.type, package.name, package.version, package.arch)


@dataclass
class _Chain:
    """The copies of one path since it was last created, bottom-up: each copy's layer and the
    packages it listed; the newest copy's findings in full."""

    runs: list[tuple[int, frozenset[_Key]]]
    findings: Findings

    def layer_of(self, key: _Key) -> int:
        layer = self.runs[-1][0]
        for lower, keys in reversed(self.runs[:-1]):
            if key not in keys:
                break
            layer = lower
        return layer


def _guarded(want: Want, path: str, parse: Callable[[], Findings]) -> Findings:
    try:
        return parse()
    except Exception as exc:  # noqa: BLE001 - any pushed file may be malformed: it must not end the scan
        return Findings(notes=(f"{path}: not read, malformed for the {want.analyzer} analyzer "
                               f"({type(exc).__name__}: {exc})",))


def _parse(want: Want, member: Member, limits: Limits) -> Findings:
    """Reads the member as the analyzer asks and parses it. Reading happens outside `_guarded`:
    its errors (ScanFailed, the caller's cancellation from check()) must propagate, while a
    parser's failure on a malformed file only becomes a note."""
    path, limit = member.path, limits.max_file_bytes
    if member.size > limit:
        return Findings(notes=(f"{path}: {human_size(member.size)}, over scan.max_file_bytes "
                               f"({human_size(limit)}): not read",))
    parse: Callable[..., Findings] = want.parse
    if want.read is Read.PRESENCE:
        return _guarded(want, path, lambda: parse(path, b""))
    if want.read is Read.BYTES:
        data = member.read(limit) or b""
        return _guarded(want, path, lambda: parse(path, data))
    if want.read is Read.DISK:
        with member.to_disk(limit) as filename:
            return _guarded(want, path, lambda: parse(path, filename or ""))
    spooled = member.spool(limit)
    if spooled is None:
        return Findings()
    with spooled:
        return _guarded(want, path, lambda: parse(path, spooled, limits))


def _relocated(findings: Findings, path: str) -> Findings:
    return dataclasses.replace(findings, packages=tuple(dataclasses.replace(p, path=path) for p in findings.packages))


class _Layer:
    """What one layer does to the merged state, gathered during its walk and applied after it
    (whiteouts act on the lower layers only)."""

    def __init__(self, alive: dict[str, _Chain]) -> None:
        self.alive = alive
        self.lower_dirs = {a for path in alive for a in ancestors(path)}
        self.new: dict[str, Findings] = {}
        self.deleted: set[str] = set()  # whiteouts, and non-directories put over a lower directory
        self.opaque: set[str] = set()
        self.touched: set[str] = set()  # tracked paths this layer wrote something at

    def add(self, member: Member, limits: Limits) -> None:
        path, kind = member.path, member.type
        if kind is EntryType.WHITEOUT:
            if path in self.alive or path in self.lower_dirs:
                self.deleted.add(path)
            return
        if kind is EntryType.OPAQUE:
            if path in self.lower_dirs:
                self.opaque.add(path)
            return
        if path in self.alive:
            self.touched.add(path)
        if kind is not EntryType.DIR and path in self.lower_dirs:
            self.deleted.add(path)
        self.new.pop(path, None)  # a later entry of the same path in one archive wins
        if kind is EntryType.FILE:
            want = analyzers.wanted(path, member.mode)
            if want is not None and (not want.magic or member.head(len(want.magic)) == want.magic):
                findings = _parse(want, member, limits)
                if findings.packages or findings.os or findings.notes:
                    self.new[path] = findings  # an empty one is remembered as nothing: it only replaces
        elif kind is EntryType.HARDLINK and member.target is not None:
            self._hardlink(member)

    def _hardlink(self, member: Member) -> None:
        want = analyzers.wanted(member.path, member.mode)
        if want is None:
            return
        target = self.new.get(member.target or "")
        target_want = analyzers.wanted(member.target or "", member.mode)
        if target is not None and target_want is not None and target_want.analyzer == want.analyzer:
            self.new[member.path] = _relocated(target, member.path)
        elif want.by_name:
            self.new[member.path] = Findings(notes=(f"{member.path}: a hard link to {member.target}, not read",))

    def apply(self, index: int) -> None:
        alive, deleted, opaque = self.alive, self.deleted, self.opaque
        for path in list(alive):
            if path in self.touched and path not in self.new:
                del alive[path]
            elif (deleted or opaque) and (path in deleted or any(a in deleted or a in opaque for a in ancestors(path))):
                del alive[path]
        for path, findings in self.new.items():
            keys = frozenset(_key(p) for p in findings.packages)
            chain = alive.get(path)
            if chain is None:
                alive[path] = _Chain(runs=[(index, keys)], findings=findings)
            else:
                chain.runs.append((index, keys))
                chain.findings = findings


def _os_of(alive: dict[str, _Chain]) -> OsInfo | None:
    for path in os_release.PATHS:  # etc/os-release first, as os-release(5) says
        chain = alive.get(path)
        if chain is not None and chain.findings.os is not None:
            return chain.findings.os
    return None


def _sort_key(package: Package) -> tuple[str, str, str, str, str, int]:
    return (package.type, package.name, package.version, package.arch or "", package.path, package.layer)


def _packages(alive: dict[str, _Chain]) -> list[Package]:
    packages = [dataclasses.replace(package, layer=chain.layer_of(_key(package)))
                for chain in alive.values() for package in chain.findings.packages]
    packages = npm.dedupe(packages)
    # One OS package listed by two databases (an rpmdb at both of its locations, dpkg's status and
    # a status.d file) is one package: keep the copy attributed lowest.
    packages.sort(key=lambda p: (p.layer, p.path))
    seen: set[_Key] = set()
    unique = []
    for package in packages:
        if package.type in OS_TYPES:
            if _key(package) in seen:
                continue
            seen.add(_key(package))
        unique.append(package)
    return sorted(unique, key=_sort_key)


def _bounded(notes: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(notes))
    if len(unique) <= MAX_NOTES:
        return tuple(unique)
    return (*unique[:MAX_NOTES], f"… and {len(unique) - MAX_NOTES} more notes")


def build_inventory(layers: Sequence[LayerSource], created_by: Sequence[str | None], limits: Limits,
                    check: Callable[[], None] = lambda: None) -> Outcome:
    """Reads the layers (in manifest order, the base first) and returns what survives in the
    merged filesystem. `created_by[i]` is the history command of layers[i]. `check()` is called
    between layers and every few MB of each; it may raise to cancel the scan.

    Raises Unsupported (a blob that is not a tar layer) and ScanFailed (a layer past
    `limits.max_layer_bytes`, a corrupt blob); str() of either is a message for users."""
    alive: dict[str, _Chain] = {}
    walk_notes: list[str] = []
    for index, source in enumerate(layers):
        check()
        layer = _Layer(alive)
        with contextlib.closing(walk_layer(source, limits, check, walk_notes)) as members:
            for member in members:
                layer.add(member, limits)
        layer.apply(index)
    inventory = Inventory(
        os=_os_of(alive),
        packages=tuple(_packages(alive)),
        layers=tuple(LayerInfo(digest=source.digest, created_by=created_by[i] if i < len(created_by) else None)
                     for i, source in enumerate(layers)),
    )
    file_notes = [note for path in sorted(alive) for note in alive[path].findings.notes]
    return Outcome(inventory=inventory, notes=_bounded(walk_notes + file_notes))
