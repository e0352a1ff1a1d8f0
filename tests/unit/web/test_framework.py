"""dockyard.web.framework: redirect targets (no open redirects) and the flash-message cookie."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.web.framework import _read_flashes, _write_flashes, repo_url, safe_next, url

DEFAULT = "/console/repositories"


# -- safe_next --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [
    None,
    "",
    "//evil.com",
    "//evil.com/console/repositories",
    "https://evil.com",
    "https://evil.com/console/repositories",
    "http:/console/x",
    "javascript:alert(1)",
    "/elsewhere",
    "/console",  # not a path under the console
    "/consoleevil",
    "/v2/_catalog",
    "console/repositories",  # relative
    "/console\\evil.com",
    "/console/\\evil.com",
    "/console/repo/a\\b",
    "\\\\evil.com",
    "/\\evil.com",
])
def test_safe_next_rejects_other_places(target: str | None) -> None:
    assert safe_next(target) == DEFAULT


@pytest.mark.parametrize("target", [
    "/console/repositories",
    "/console/namespaces/team",
    "/console/repo/team/app/-/versions?sort=name&order=desc&page=2",
    "/console/repositories?q=app&namespace=team",
    "/console/audit?action=tag.delete",
])
def test_safe_next_keeps_console_paths(target: str) -> None:
    assert safe_next(target) == target


def test_console_urls() -> None:
    assert url("/repositories") == "/console/repositories"
    assert url("/repositories", q="a b", namespace="", after=None) == "/console/repositories?q=a+b"
    assert repo_url("team/app") == "/console/repo/team/app"
    assert repo_url("team/app", "versions", sort="name") == "/console/repo/team/app/-/versions?sort=name"
    assert repo_url("team/app", "tags", "v1/x", "delete") == "/console/repo/team/app/-/tags/v1%2Fx/delete"
    for made in (url("/x"), repo_url("team/app", "versions", "latest")):
        assert safe_next(made) == made


# -- flash cookie -------------------------------------------------------------------------------------------
def test_flash_cookie_round_trip() -> None:
    flashes = [("ok", "Namespace team created."), ("error", "名称无效 <b>&amp;</b>"), ("info", "")]
    value = _write_flashes(flashes)
    assert all(c.isalnum() or c in "-_=" for c in value)  # a valid cookie value, no quoting needed
    assert _read_flashes(value) == flashes


def test_flash_cookie_keeps_at_most_five() -> None:
    flashes = [("ok", f"message {i}") for i in range(8)]
    assert _read_flashes(_write_flashes(flashes)) == flashes[:5]


def _encoded(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_flash_cookie_drops_unknown_kinds_and_truncates_long_messages() -> None:
    value = _encoded([["ok", "fine"], ["script", "dropped"], ["error", "x" * 2000], ["info", 42]])
    assert _read_flashes(value) == [("ok", "fine"), ("error", "x" * 500), ("info", "42")]


@pytest.mark.parametrize("junk", [
    None,
    "",
    "garbage",
    "!!!!",
    "é∂ƒ",
    "%00%ff",
    "a" * 5000,  # too long
    base64.urlsafe_b64encode(b"\xff\xfe\x00not utf-8").decode(),
    base64.urlsafe_b64encode(b"not json").decode(),
    _encoded(None),
    _encoded(5),
    _encoded("ok"),
    _encoded({"ok": "message"}),
    _encoded([1, 2]),
    _encoded([["ok"]]),
    _encoded([["ok", "a", "b"]]),
    _encoded([None]),
    _encoded([[["ok"], "x"]]),
    _encoded([[{"k": 1}, "x"]]),
])
def test_read_flashes_tolerates_garbage(junk: str | None) -> None:
    assert _read_flashes(junk) == []


def test_read_flashes_tolerates_deeply_nested_json() -> None:
    # regression: the RecursionError escaped (only ValueError and TypeError were caught): a 500 on every page
    value = base64.urlsafe_b64encode(b"[" * 3000).decode()
    assert len(value) <= 4096  # within the length _read_flashes accepts
    assert _read_flashes(value) == []
