"""The advisory database: real advisory data imported into one SQLite file that scans read.

- importers, one module per family of formats: `osv` (PyPA, Go, GHSA, AlmaLinux, osv.dev),
  `alpine` (secdb, also Wolfi's), `debian` (tracker text lists, vuln-list JSON, the tracker's
  JSON export), `ubuntu` (UCT), `rustsec`, `npm_legacy` (nodejs security-wg), `wolfi`
  (advisories YAML), `csaf` (Red Hat CSAF/VEX); all produce `records.Advisory`;
- `layout`: recognises each source in a tree by its files' names and shapes;
- `store`: the SQLite file, replaced atomically on every write; `status()`;
- `feeds`: downloads feeds (`update()`) and imports them;
- `rules` and `merge`: the pure matching semantics the matcher (scan/matcher.py) applies;
- `cli`: `dockyard vulndb import|update|status`.

The functions below are the entry points for the rest of the system.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dockyard.scan.vulndb.feeds import DEFAULT_FEEDS, FeedResult, update
from dockyard.scan.vulndb.layout import SourceRead, read_tree
from dockyard.scan.vulndb.store import DbStatus, SourceStatus, status, write_sources

__all__ = ["DEFAULT_FEEDS", "DbStatus", "FeedResult", "ImportReport", "SourceRead", "SourceStatus",
           "import_paths", "status", "update"]


@dataclass(frozen=True, slots=True)
class ImportReport:
    sources: tuple[SourceRead, ...]
    unknown: int  # files of no known format, skipped
    unknown_examples: tuple[str, ...]
    db_id: str  # "" when nothing was written
    seconds: float


def import_paths(db_path: Path, paths: Iterable[Path]) -> ImportReport:
    """Import every source found under `paths` into the database at `db_path`, replacing those
    sources' previous records, in one atomic replacement of the file."""
    started = time.perf_counter()
    tree = read_tree([Path(p) for p in paths])
    db_id = write_sources(Path(db_path), tree.sources.values()) if tree.sources else ""
    return ImportReport(tuple(tree.sources.values()), tree.unknown, tuple(tree.unknown_examples), db_id,
                        time.perf_counter() - started)
