"""Fixtures for every in-process test here.

`no_server_errors` (tests/integration/helpers.py) is autouse for the whole directory: any request
a test sends through a Starlette TestClient that is answered with a 5xx fails the test, whether or
not the test module imports the guard.
"""

from tests.integration.helpers import no_server_errors  # noqa: F401  (an autouse fixture: applies to every test)
