"""dockyard.client on its own, and the CLI's argument types: what no Dockyard server answers (a
proxy's 502, an HTML 404, a body that is not JSON, an endless list), through a small
httpx.MockTransport. Everything the real API answers is tested against the real application in
tests/integration/test_cli_manage.py."""

from __future__ import annotations

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from dockyard.cli import main
from dockyard.cli_manage import params
from dockyard.client import Client


def test_errors_without_an_api_error_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_USER", "alice")
    monkeypatch.setenv("DOCKYARD_PASSWORD", "alice-password")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/namespaces"):
            return httpx.Response(404, text="404 page not found")
        if request.url.path.endswith("/user"):
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        return httpx.Response(200, text="not json")

    transport = httpx.MockTransport(handler)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), obj={"transport": transport})

    result = invoke("namespace", "list")
    assert result.exit_code == 1 and "does this server have the management API?" in result.stderr
    result = invoke("whoami")
    assert result.exit_code == 1 and "HTTP 502 Bad Gateway: <html>Bad Gateway</html>" in result.stderr
    result = invoke("repo", "show", "a/b")
    assert result.exit_code == 1 and "not JSON" in result.stderr
    result = invoke("whoami", "--url", "ftp://x")
    assert result.exit_code == 1 and "invalid URL 'ftp://x'" in result.stderr


def test_client_paginate_stops_at_the_limit_and_accepts_plain_lists() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        if request.url.path.endswith("/plain"):
            return httpx.Response(200, json=[{"n": 1}, {"n": 2}])
        start = int(request.url.params.get("after", "0"))
        return httpx.Response(200, json={"items": [{"n": start + 1}, {"n": start + 2}], "next": str(start + 2)})

    with Client("http://x", transport=httpx.MockTransport(handler)) as client:
        assert [i["n"] for i in client.paginate("/endless", limit=5)] == [1, 2, 3, 4, 5]
        assert [s.get("limit") for s in seen] == ["5", "3", "1"]
        assert [i["n"] for i in client.paginate("/plain")] == [1, 2]
        assert client.registry_host == "x"
    assert "authorization" not in {k.lower() for k in seen[0]}


def test_duration_parsing() -> None:
    duration = params.Duration()
    assert [duration.convert(v, None, None) for v in ("3600", "90s", "30m", "12h", "7d", "2w", " 5 M ")] == [
        3600, 90, 1800, 43200, 604800, 1209600, 300]
    for bad in ("", "1.5h", "-3", "h", "3y"):
        with pytest.raises(click.BadParameter):
            duration.convert(bad, None, None)
