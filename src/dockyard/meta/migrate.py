"""Run Alembic migrations programmatically (`dockyard migrate`, and on every `dockyard serve`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from dockyard.meta.db import Database


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
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
