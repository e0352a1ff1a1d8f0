"""Fixtures for every in-process test here.

`no_server_errors` (tests/integration/helpers.py) is autouse for the whole directory: any request
a test sends through a Starlette TestClient that is answered with a 5xx fails the test, whether or
not the test module imports the guard.
"""

from collections.abc import Iterator

import pytest

from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from tests.integration.helpers import no_server_errors  # noqa: F401  (an autouse fixture: applies to every test)


@pytest.fixture
def nodes(db_url: str) -> Iterator[list[Database]]:
    """Four "nodes" on one database: separate Database objects (their own connection pools), as
    separate processes would have."""
    dbs = [Database(db_url) for _ in range(4)]
    upgrade(dbs[0])
    yield dbs
    for db in dbs:
        db.dispose()
