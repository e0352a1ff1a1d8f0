"""Layout detection: which source each file of an advisory tree belongs to, and its records.

`dockyard vulndb import PATH…` is given whole trees (a checkout of a feed, an unpacked archive,
the staged vulndata directory with a dozen feeds side by side), a subdirectory of one, or single
files. Each file is recognised by its name and shape, never by a configured list:

| kind      | recognised by                                                                 |
|-----------|-------------------------------------------------------------------------------|
| `osv`     | JSON/YAML with `id` and an `affected` list (PYSEC, GO, GHSA, ALSA, osv.dev zips) |
| `alpine`  | secdb documents (`packages[].pkg.secfixes`) and vuln-list per-package `secfixes` |
| `debian`  | `data/{CVE,DSA,DLA}/list` text, vuln-list `Header`/`Annotations` JSON, the tracker JSON export |
| `ubuntu`  | UCT files `CVE-*` starting with `Candidate:`/`PublicDate…:`                      |
| `rustsec` | `RUSTSEC-*.md` with a TOML front matter                                         |
| `npm`     | nodejs/security-wg `vuln/npm/*.json` (`module_name`, `vulnerable_versions`)    |
| `wolfi`   | `*.advisories.yaml` (`package`, `advisories`)                                   |
| `csaf`    | CSAF 2.0 JSON (`document.csaf_version`)                                          |

Anything else (READMEs, licences, manifests) is skipped and counted as unknown.

A source is its kind plus the name of its root directory ("osv:osv-pypi"): the directory above
the format's own layout directories (`vulns/`, `data/`, `advisories/`, `tracker/`, `crates/`,
`v3.11/`…); else, for a file inside a directory under the path given, that directory; else the
path given (a file directly in it, or the file's own directory when a single file is given).
Wolfi's advisories repository keeps its files at its top: its root is the files' directory.
Importing part of a source therefore replaces that source with the part.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.scan.vulndb import alpine, csaf, debian, npm_legacy, osv, rustsec, ubuntu, wolfi
from dockyard.scan.vulndb.records import Advisory

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on PyPA's 2,600 files
_MARKERS = {
    "osv": {"vulns", "advisories", "data"},
    "alpine": {"alpine"},
    "debian": {"data", "tracker"},
    "ubuntu": {"active", "retired", "ignored"},
    "rustsec": {"crates"},
    "npm": {"vuln"},
    "csaf": {"advisories", "vex", "csaf"},
    "wolfi": set(),
}
_MAX_DEPTH = 6


class _Skip(Exception):
    """A file of a known kind that holds nothing to import (withdrawn, informational, a duplicate index)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind


@dataclass
class SourceRead:
    """Everything read for one source."""

    name: str
    kind: str
    path: str
    advisories: dict[str, Advisory] = field(default_factory=dict)
    files: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return len(self.advisories)

    @property
    def newest(self) -> str | None:
        dates = [d for a in self.advisories.values() for d in (a.modified, a.published) if d]
        return max(dates) if dates else None

    def add(self, advisory: Advisory) -> None:
        known = self.advisories.get(advisory.id)
        if known is None:
            self.advisories[advisory.id] = advisory
        else:
            known.merge(advisory)


@dataclass
class TreeRead:
    sources: dict[str, SourceRead] = field(default_factory=dict)
    unknown: int = 0
    unknown_examples: list[str] = field(default_factory=list)


def _load_yaml(path: Path) -> Any:
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=_LOADER)


def _load_json(path: Path) -> Any:
    with path.open("rb") as fh:
        return json.load(fh)


def _structured(doc: Any, path: Path) -> tuple[str, list[Advisory]]:
    """The kind and records of a parsed JSON/YAML document; ValueError when unknown."""
    if csaf.looks_like(doc):
        return "csaf", csaf.parse(doc)
    if isinstance(doc, dict) and isinstance(doc.get("id"), str) and isinstance(doc.get("affected"), list):
        record = osv.parse(doc)
        if record is None:
            raise _Skip("osv", "withdrawn")
        return "osv", [record]
    if alpine.is_package_file(doc):
        return "alpine", alpine.parse_package_file(doc)
    if alpine.is_secdb(doc):
        return "alpine", alpine.parse_secdb(doc)
    if wolfi.is_advisories_file(doc):
        return "wolfi", wolfi.parse(doc)
    if npm_legacy.looks_like(doc):
        record = npm_legacy.parse(doc)
        return "npm", [record] if record else []
    if isinstance(doc, dict) and {"vulnerable", "patched"} <= doc.keys():
        raise _Skip("npm", "Node.js core")  # Node.js runtime advisories: no inventory lists the runtime
    if debian.is_vuln_list(doc):
        record = debian.parse_vuln_list(doc)
        return "debian", [record] if record else []
    if debian.is_tracker_json(doc):
        return "debian", debian.parse_tracker_json(doc)
    raise ValueError("unknown document")


def read_file(path: Path) -> tuple[str, list[Advisory]]:
    """(kind, records) of one file. Raises ValueError for a file of no known kind, _Skip for a
    known one with nothing to import."""
    name, suffix = path.name, path.suffix.lower()
    if suffix == ".md":
        if not name.startswith("RUSTSEC-"):
            raise ValueError("not an advisory")
        try:
            return "rustsec", [rustsec.parse(path.read_text(encoding="utf-8"))]
        except rustsec.Skipped as exc:
            raise _Skip("rustsec", str(exc)) from None
    if suffix in (".yaml", ".yml"):
        return _structured(_load_yaml(path), path)
    if suffix == ".json":
        if name == "index.json" and path.parent.name == "npm":
            raise _Skip("npm", "index")  # repeats every vuln/npm record
        return _structured(_load_json(path), path)
    if name == "list" and path.parent.name in ("CVE", "DSA", "DLA", "DTSA"):
        return "debian", debian.parse_list(path.read_text(encoding="utf-8", errors="replace"))
    if name.startswith("CVE-") and not suffix.strip(".").isalpha():
        text = path.read_text(encoding="utf-8", errors="replace")
        if ubuntu.looks_like(text):
            record = ubuntu.parse(text)
            return "ubuntu", [record] if record else []
    raise ValueError("unknown file")


def _is_marker(kind: str, name: str) -> bool:
    if name in _MARKERS.get(kind, ()):
        return True
    return kind == "alpine" and (re.fullmatch(r"v\d+\.\d+", name) is not None or name == "edge")


def source_root(kind: str, file: Path, given: Path) -> Path:
    """The root directory of the source `file` belongs to (see the module docstring)."""
    if kind == "wolfi":  # the advisories repository keeps its files at the top
        return file.parent
    for depth, parent in enumerate(file.parents):
        if depth >= _MAX_DEPTH or parent == parent.parent:
            break
        if _is_marker(kind, parent.name):
            return parent.parent
    if given.is_dir() and given != file:
        rel = file.relative_to(given).parts
        return given / rel[0] if len(rel) >= 2 else given
    return file.parent


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.rglob("*")):
        if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
            yield child


def read_tree(paths: Iterable[Path], name: str | None = None) -> TreeRead:
    """Read every advisory file under `paths`. `name` overrides the directory part of each
    source's name (`dockyard vulndb update` names sources after their feeds)."""
    tree = TreeRead()
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise FileNotFoundError(f"{given} does not exist")
        given = given.resolve()
        for file in _walk(given):
            started = time.perf_counter()
            skipped = False
            try:
                kind, records = read_file(file)
            except _Skip as skip:
                kind, records, skipped = skip.kind, [], True
            except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, yaml.YAMLError):
                tree.unknown += 1
                if len(tree.unknown_examples) < 10:
                    tree.unknown_examples.append(str(file))
                continue
            root = source_root(kind, file, given)
            source_name = f"{kind}:{name or root.name}"
            source = tree.sources.get(source_name)
            if source is None:
                source = tree.sources[source_name] = SourceRead(source_name, kind, str(root))
            source.files += 1
            if skipped or not records:
                source.skipped += 1
            for record in records:
                source.add(record)
            source.seconds += time.perf_counter() - started
    return tree

