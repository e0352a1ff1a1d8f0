"""The Alembic history creates exactly the schema in meta/tables.py (what `alembic check` does),
on SQLite and on PostgreSQL, and upgrading twice is a no-op; on PostgreSQL, nodes that start together
migrate one after the other."""

from __future__ import annotations

import os
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dockyard.meta.db import Database
from dockyard.meta.migrate import HEAD, alembic_config, current_revision, upgrade
from dockyard.meta.tables import metadata
from tests.conftest import PG_URL, _pg_database


def test_migrations_match_the_models(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        upgrade(db)
        assert current_revision(db) == HEAD
        upgrade(db)  # idempotent
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
    finally:
        db.dispose()


def test_head_is_the_newest_migration() -> None:
    """migrate.HEAD (which lets a server skip Alembic on an up-to-date database) is Alembic's head."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config(Database("sqlite://"))).get_current_head() == HEAD


@pytest.mark.postgres
def test_nodes_starting_at_once_migrate_one_after_the_other() -> None:
    """Several nodes of one registry started together on a fresh PostgreSQL database each run the
    migrations at start: they must not trip over each other (CREATE TABLE alembic_version twice)."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("DOCKYARD_TEST_POSTGRES is not set: run the tests through scripts/test")
        pytest.skip("PostgreSQL not configured (run through scripts/test)")
    url = _pg_database()
    nodes = [Database(url) for _ in range(4)]
    start = threading.Barrier(len(nodes), timeout=30)
    errors: list[BaseException] = []

    def migrate(db: Database) -> None:
        start.wait()
        try:
            upgrade(db)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in nodes]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        with nodes[0].engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    finally:
        for db in nodes:
            db.dispose()
