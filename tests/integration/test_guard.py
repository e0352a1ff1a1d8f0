"""The no-5xx guard applies to every integration test, without an import."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient


def test_the_guard_applies_without_an_import(request: pytest.FixtureRequest) -> None:
    # this module does not import no_server_errors: tests/integration/conftest.py makes it autouse
    assert "no_server_errors" in request.fixturenames


def test_the_guard_records_a_5xx(request: pytest.FixtureRequest) -> None:
    seen: list[str] = request.getfixturevalue("no_server_errors")

    async def broken(_: Request) -> PlainTextResponse:
        return PlainTextResponse("boom", status_code=503)

    with TestClient(Starlette(routes=[Route("/", broken)])) as client:
        assert client.get("/").status_code == 503
    assert len(seen) == 1 and "-> 503: boom" in seen[0], seen
    seen.clear()  # this test's 5xx was on purpose
