"""Cluster facts: values every node of one installation shares, made once by whichever node
asks first (the installation's id, which the blob store is marked with, ...).

`get_or_create` is insert-if-absent, then read: of several nodes starting at once each makes a
candidate, exactly one insert lands (the primary key), and every node reads that one back. On
PostgreSQL a conflicting insert waits for the transaction holding the other insert and then does
nothing; the read after it is a new statement, so under READ COMMITTED it sees the winner's row.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from dockyard.meta.db import Database
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import cluster_facts


class ClusterFacts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(select(cluster_facts.c.value).where(cluster_facts.c.name == name)).scalar()

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        """The fact `name`; when there is none yet, `make()`'s value becomes it, unless another
        node's landed first: then that one is returned, here as there."""
        value = self.get(name)  # the usual case, a read only
        if value is not None:
            return value
        candidate = make()
        with self.db.write() as conn:
            insert_ignore(conn, cluster_facts, {"name": name, "value": candidate})
            value = conn.execute(select(cluster_facts.c.value).where(cluster_facts.c.name == name)).scalar_one()
        return str(value)


def fact_in_sqlite_file(path: Path, name: str) -> str | None:
    """A fact read from a SQLite database file that may not exist or not be migrated yet, without
    creating or changing it (`dockyard check-config`)."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT value FROM cluster_facts WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
