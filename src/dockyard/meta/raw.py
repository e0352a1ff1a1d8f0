"""Hot-path statements run on the driver's own cursor, in a transaction of Database.raw_write.

A manifest push runs about ten statements. Through SQLAlchemy Core each one costs 80-200 µs of
Python (building the statement, its cache key, compiling or looking it up, wrapping the
result); the same statement on the DBAPI cursor costs ~20 µs (measured on SQLite here), and
taking the pooled connection and its transaction without SQLAlchemy's Connection saves another
~0.3 ms per push. The manifest write path (ContentStore.put_manifest) uses this; everything else
stays in SQLAlchemy.

SQL is written once with `?` placeholders and converted for psycopg (`%s`). Values go to the
driver as they are, except datetimes, which are bound the way SQLAlchemy binds them, so rows
read back through SQLAlchemy are the same: naive UTC text on SQLite, aware datetimes on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=128)
def _for_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def marks(n: int) -> str:
    """`?, ?, …` for an IN list of n values."""
    return ", ".join("?" * n)


class RawCursor:
    def __init__(self, driver: Any, sqlite: bool) -> None:
        """`driver`: a DBAPI connection in a transaction (Database.raw_write)."""
        self._cur = driver.cursor()
        self._sqlite = sqlite

    def _sql(self, sql: str) -> str:
        return sql if self._sqlite else _for_psycopg(sql)

    def when(self, value: datetime) -> Any:
        """A timestamp as SQLAlchemy's DateTime(timezone=True) binds it on this database."""
        if self._sqlite:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    @property
    def key_share(self) -> str:
        """` FOR KEY SHARE` to end a SELECT with on PostgreSQL: the rows read stay as they are
        (no DELETE, no key change) until this transaction ends. Empty on SQLite, which has no
        row locks and needs none: its writers are serialised."""
        return "" if self._sqlite else " FOR KEY SHARE"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        self._cur.execute(self._sql(sql), params)
        return int(self._cur.rowcount)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cur.execute(self._sql(sql), params)
        row = self._cur.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._sql(sql), params)
        return [tuple(row) for row in self._cur.fetchall()]
