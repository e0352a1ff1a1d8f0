"""The advisory database file (scan/vulndb/store.py, vulndb.import_paths): atomic replacement,
re-imports replacing a source's records, status."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockyard.scan.vulndb import import_paths, status
from dockyard.scan.vulndb.layout import read_tree
from dockyard.scan.vulndb.store import write_sources
from tests.unit.scan.vulndb.vendored import VULNDATA


def _count(db: Path, source: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM advisories WHERE source=?", (source,)).fetchone()[0]


def test_import_then_status(tmp_path: Path) -> None:
    db = tmp_path / "vulndb" / "advisories.sqlite"
    assert status(db).exists is False and status(db).db_id == ""
    report = import_paths(db, [VULNDATA])
    assert report.db_id and report.unknown == 2
    st = status(db)
    assert st.exists and st.db_id == report.db_id
    assert st.updated_at is not None and abs(datetime.now(UTC) - st.updated_at) < timedelta(minutes=1)
    by_name = {s.name: s for s in st.sources}
    pypi = by_name["osv:osv-pypi"]
    assert (pypi.kind, pypi.records, pypi.skipped, pypi.files) == ("osv", 5, 1, 6)
    assert pypi.path == str(VULNDATA / "osv-pypi")
    assert pypi.newest == "2023-10-10T14:28:19.389317+00:00"
    assert by_name["debian:debian-vuln-list-tracker"].newest == "2024-07-01"
    assert [p.name for p in db.parent.iterdir()] == ["advisories.sqlite", "advisories.sqlite.lock"]  # no temp file left


def test_every_write_is_a_new_file_with_a_new_id(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    first = import_paths(db, [VULNDATA / "osv-go"])
    inode = os.stat(db).st_ino
    second = import_paths(db, [VULNDATA / "rustsec"])
    assert second.db_id != first.db_id
    assert os.stat(db).st_ino != inode  # replaced, never written in place
    assert {s.name for s in status(db).sources} == {"osv:osv-go", "rustsec:rustsec"}  # the first source kept


def test_reimport_replaces_the_source(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    copy = tmp_path / "osv-pypi"
    shutil.copytree(VULNDATA / "osv-pypi", copy)
    import_paths(db, [copy, VULNDATA / "osv-go"])
    assert _count(db, "osv:osv-pypi") == 5
    shutil.rmtree(copy / "vulns" / "requests")
    import_paths(db, [copy])
    assert _count(db, "osv:osv-pypi") == 2  # the three requests records are gone, not duplicated or kept
    assert _count(db, "osv:osv-go") == 4  # other sources untouched
    with sqlite3.connect(db) as conn:
        query = "SELECT count(*) FROM affected WHERE source='osv:osv-pypi' AND package='requests'"
        assert conn.execute(query).fetchone()[0] == 0


def test_a_reader_keeps_reading_the_old_file(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    import_paths(db, [VULNDATA / "osv-go"])
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        before = reader.execute("SELECT value FROM meta WHERE key='db_id'").fetchone()[0]
        import_paths(db, [VULNDATA / "osv-pypi"])
        assert reader.execute("SELECT value FROM meta WHERE key='db_id'").fetchone()[0] == before
        assert reader.execute("SELECT count(*) FROM advisories").fetchone()[0] == 4
    finally:
        reader.close()
    assert status(db).db_id != before


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    trees = [read_tree([VULNDATA / name]) for name in ("osv-go", "osv-pypi", "rustsec", "alpine-secdb")]
    threads = [threading.Thread(target=write_sources, args=(db, list(t.sources.values()))) for t in trees]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {s.name for s in status(db).sources} == {
        "osv:osv-go", "osv:osv-pypi", "rustsec:rustsec", "alpine:alpine-secdb"}


def test_an_older_schema_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    import_paths(db, [VULNDATA / "osv-go"])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value='0' WHERE key='schema'")
    import_paths(db, [VULNDATA / "rustsec"])
    assert {s.name for s in status(db).sources} == {"rustsec:rustsec"}
