"""Run Alembic migrations programmatically (`dockyard migrate`, and on every `dockyard serve`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dockyard.meta.db import Database


MIGRATION_LOCK = 0x646F636B  # "dock": the PostgreSQL advisory lock key migrations hold


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "dockyard.meta:migrations")
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database) -> None:
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
