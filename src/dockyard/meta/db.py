"""Engine set-up and transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode with foreign keys on. pysqlite's own transaction handling is turned off
so that write transactions start with BEGIN IMMEDIATE: the writer takes the lock up front and
concurrent writers wait (busy_timeout) instead of failing to upgrade a read lock. A process-wide
lock serialises writers in this process too, which is cheaper than SQLite's busy-wait loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.pool import QueuePool


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite gives naive datetimes (stored as UTC), PostgreSQL aware ones: UTC-aware either way."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url,
                poolclass=QueuePool,
                pool_size=pool_size,
                max_overflow=20,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (SQLite: a deferred transaction, i.e. a consistent snapshot)."""
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on any exception."""
        if self._write_lock is not None:
            with self._write_lock, self.engine.connect() as conn:
                conn.info["immediate"] = True
                with conn.begin():
                    yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def raw_write(self) -> Iterator[Any]:
        """A write transaction on the pooled driver connection itself, for the statements of
        meta/raw.py: committed on success, rolled back on any exception, serialised with
        `write()` (SQLite: BEGIN IMMEDIATE under the same process-wide lock)."""
        with self._write_lock if self._write_lock is not None else nullcontext():
            pooled = self.engine.raw_connection()
            driver = pooled.driver_connection
            try:
                if self.is_sqlite:
                    driver.execute("BEGIN IMMEDIATE")  # pysqlite is in autocommit mode (see above)
                yield driver
                driver.commit()
            except BaseException:
                driver.rollback()
                raise
            finally:
                pooled.close()  # back to the pool

    def listen_url(self) -> str | None:
        """The libpq URL of this PostgreSQL database (for a LISTEN connection), or None (SQLite)."""
        if self.is_sqlite:
            return None
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only a power loss may lose
    # the last transactions, never corrupt the database.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("immediate", False) else "BEGIN")

