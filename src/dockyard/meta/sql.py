"""Dialect helpers shared by the stores: INSERT … ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert a row unless it conflicts with an existing one; returns the number inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt).rowcount


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update: list[str]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in update})
    conn.execute(stmt)
