"""The advisory database: one SQLite file, replaced whole on every import.

A running server reads the file while `dockyard vulndb import|update` writes a new one, so a
write never touches the live file: it copies it next to itself (`advisories.sqlite.<random>.tmp`),
replaces the imported sources' records in the copy, stamps a fresh random `db_id` and
`updated_at` (UTC), fsyncs, and `os.replace`s it over the old one. Readers see the old database
or the new one, never a half-written one, and notice the change by the file's identity (inode,
mtime, size; see matcher.AdvisoryIndex.load). An flock on `<file>.lock` serialises writers, so
two imports at once cannot lose each other's sources.

Tables:

    meta(key, value)          schema, db_id, updated_at
    sources(name, kind, path, records, skipped, files, seconds, imported_at, newest)
    advisories(source, id, aliases, related, title, description, url, severity,
               severity_kind, cvss_vector, cvss_score, published, modified, bundle)
                              aliases, related: ids separated by spaces
    affected(source, advisory_id, ecosystem, release, package, rule)   rule: Affected.to_json()

A source is "kind:name" (osv:osv-pypi); importing it again deletes its old rows first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.scan.vulndb.layout import SourceRead

SCHEMA = 2

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, records INTEGER NOT NULL,
  skipped INTEGER NOT NULL, files INTEGER NOT NULL, seconds REAL NOT NULL, imported_at TEXT NOT NULL, newest TEXT);
CREATE TABLE IF NOT EXISTS advisories (
  source TEXT NOT NULL, id TEXT NOT NULL, aliases TEXT NOT NULL, related TEXT NOT NULL, title TEXT,
  description TEXT, url TEXT, severity TEXT, severity_kind TEXT, cvss_vector TEXT, cvss_score REAL,
  published TEXT, modified TEXT, bundle INTEGER NOT NULL, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS affected (
  source TEXT NOT NULL, advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, release TEXT NOT NULL,
  package TEXT NOT NULL, rule TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS affected_source ON affected (source);
CREATE INDEX IF NOT EXISTS advisories_id ON advisories (id);
"""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: str
    path: str
    records: int
    skipped: int
    files: int
    seconds: float
    imported_at: datetime
    newest: str | None


@dataclass(frozen=True, slots=True)
class DbStatus:
    path: Path
    exists: bool
    db_id: str
    updated_at: datetime | None
    sources: tuple[SourceStatus, ...]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def connect(path: Path, readonly: bool = True) -> sqlite3.Connection:
    """A connection to the database file; read-only through a URI so a reader never creates it."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


@contextlib.contextmanager
def _writer_lock(db_path: Path) -> Iterator[None]:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db_path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rows(source: SourceRead) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    advisories, affected = [], []
    for a in source.advisories.values():
        advisories.append((source.name, a.id, " ".join(a.aliases), " ".join(a.related), a.title,
                           a.description, a.url, a.severity, a.severity_kind, a.cvss_vector, a.cvss_score,
                           a.published, a.modified, int(a.bundle)))
        for entry in a.affected:
            affected.append((source.name, a.id, entry.ecosystem, entry.release, entry.package,
                             json.dumps(entry.to_json(), separators=(",", ":"))))
    return advisories, affected


def write_sources(db_path: Path, sources: Iterable[SourceRead]) -> str:
    """Replace (or add) `sources` in the database at `db_path`, atomically. Returns the new db_id."""
    db_path = Path(db_path)
    with _writer_lock(db_path):
        tmp = db_path.with_name(f"{db_path.name}.{secrets.token_hex(4)}.tmp")
        try:
            if db_path.exists():
                shutil.copyfile(db_path, tmp)
            conn = sqlite3.connect(tmp)
            try:
                conn.executescript(_DDL)
                schema = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if schema is not None and int(schema[0]) != SCHEMA:  # another layout: start over
                    conn.executescript("DELETE FROM sources; DELETE FROM advisories; DELETE FROM affected;")
                now = utcnow()
                db_id = secrets.token_hex(16)
                for source in sources:
                    conn.execute("DELETE FROM affected WHERE source=?", (source.name,))
                    conn.execute("DELETE FROM advisories WHERE source=?", (source.name,))
                    advisories, affected = _rows(source)
                    conn.executemany("INSERT INTO advisories VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", advisories)
                    conn.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?)", affected)
                    conn.execute("INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?,?,?)", (
                        source.name, source.kind, source.path, source.records, source.skipped, source.files,
                        round(source.seconds, 3), now.isoformat(), source.newest))
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", [
                    ("schema", str(SCHEMA)), ("db_id", db_id), ("updated_at", now.isoformat())])
                conn.commit()
                conn.execute("VACUUM")
            finally:
                conn.close()
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, db_path)
            _fsync_dir(db_path.parent)
            return db_id
        finally:
            tmp.unlink(missing_ok=True)


def status(db_path: Path) -> DbStatus:
    """What the database holds: its id, when it was written, and each source's numbers."""
    db_path = Path(db_path)
    if not db_path.exists():
        return DbStatus(db_path, False, "", None, ())
    conn = connect(db_path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        rows = conn.execute("SELECT * FROM sources ORDER BY name").fetchall()
    finally:
        conn.close()
    updated = meta.get("updated_at")
    return DbStatus(
        db_path, True, meta.get("db_id", ""), datetime.fromisoformat(updated) if updated else None,
        tuple(SourceStatus(r["name"], r["kind"], r["path"], r["records"], r["skipped"], r["files"], r["seconds"],
                           datetime.fromisoformat(r["imported_at"]), r["newest"]) for r in rows),
    )
