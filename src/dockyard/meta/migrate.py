"""Run Alembic migrations programmatically (`dockyard migrate`, and on every `dockyard serve`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from dockyard.meta.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions (tests/unit/meta/test_migrations.py checks it is
# Alembic's head): a database already there is not migrated, and Alembic (with Mako, ~12 MiB) is
# not even loaded into a server that starts on an up-to-date database.
HEAD = "0012"


MIGRATION_LOCK = 0x646F636B  # "dock": the PostgreSQL advisory lock key migrations hold


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "dockyard.meta:migrations")
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def current_revision(db: Database) -> str | None:
    """The database's Alembic revision (None: not migrated yet)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(db: Database) -> None:
    if current_revision(db) == HEAD:
        return
    from alembic import command

    cfg = alembic_config(db)
    if db.is_sqlite:
        # Migrations run outside our BEGIN IMMEDIATE handling: let Alembic manage its transaction.
        with db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    else:
        with db.engine.begin() as conn:
            # Nodes started together each migrate at start: one at a time (the lock is released
            # with the transaction), the next then finds the schema at head and does nothing.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def upgrade_apart(db: Database) -> None:
    """`upgrade` in a child process, for the long-running ones (`dockyard serve`, `dockyard
    worker`): Alembic, Mako and what a migration allocates never enter the server's memory. The
    URL goes through standard input (it may hold a password: never on a command line)."""
    if current_revision(db) == HEAD:
        return
    import subprocess
    import sys

    code = ("import sys\nfrom dockyard.meta.db import Database\nfrom dockyard.meta.migrate import upgrade\n"
            "db = Database(sys.stdin.read())\nupgrade(db)\ndb.dispose()\n")
    done = subprocess.run([sys.executable, "-c", code], input=db.url, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"the database migration failed: {done.stderr.strip()[-2000:]}")
