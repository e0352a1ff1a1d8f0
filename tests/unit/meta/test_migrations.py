"""The Alembic history creates exactly the schema in meta/tables.py (what `alembic check` does),
on SQLite and on PostgreSQL, and upgrading twice is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from dockyard.meta.tables import metadata


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        upgrade(db)
        upgrade(db)  # idempotent
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
    finally:
        db.dispose()
