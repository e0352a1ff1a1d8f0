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

from typing import TYPE_CHECKING, Any

from dockyard.scan.vulndb.store import DbStatus, SourceStatus, status, write_sources

if TYPE_CHECKING:
    from dockyard.scan.vulndb.feeds import DEFAULT_FEEDS, FeedResult, update
    from dockyard.scan.vulndb.layout import SourceRead

# The importers and the feed downloader (httpx, every format's reader) load when first used: the
# registry reads only the database's status at start-up.
_LAZY = {"DEFAULT_FEEDS": "feeds", "FeedResult": "feeds", "update": "feeds", "SourceRead": "layout"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    from dockyard.scan.vulndb.layout import read_tree

    started = time.perf_counter()
    tree = read_tree([Path(p) for p in paths])
    db_id = write_sources(Path(db_path), tree.sources.values()) if tree.sources else ""
    return ImportReport(tuple(tree.sources.values()), tree.unknown, tuple(tree.unknown_examples), db_id,
                        time.perf_counter() - started)
