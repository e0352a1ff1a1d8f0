"""Token scopes: `type:name:actions`."""

from __future__ import annotations

import pytest

from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS, Scope, parse_scope, parse_scopes


def test_parse_repository_scope() -> None:
    s = parse_scope("repository:library/ubuntu:pull,push")
    assert s == Scope("repository", "library/ubuntu", ("pull", "push"))
    assert str(s) == "repository:library/ubuntu:pull,push"
    assert s.as_claim() == {"type": "repository", "name": "library/ubuntu", "actions": ["pull", "push"]}


def test_parse_catalog_scope() -> None:
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))


def test_name_with_a_port() -> None:
    assert parse_scope("repository:localhost:5000/app:pull") == Scope("repository", "localhost:5000/app", ("pull",))


def test_duplicate_and_empty_actions() -> None:
    assert parse_scope("repository:a:pull,,pull,push,").actions == ("pull", "push")
    assert parse_scope("repository:a:").actions == ()


@pytest.mark.parametrize("text", ["", "repository", "repository:a", ":a:pull", "repository::pull", "::", ":"])
def test_malformed_scopes_are_none(text: str) -> None:
    assert parse_scope(text) is None


def test_parse_scopes_splits_on_spaces_and_drops_malformed() -> None:
    scopes = parse_scopes(["repository:a:pull repository:b:push", "bogus", "registry:catalog:*", ""])
    assert [str(s) for s in scopes] == ["repository:a:pull", "repository:b:push", "registry:catalog:*"]


def test_all_repository_actions() -> None:
    assert ALL_REPOSITORY_ACTIONS == ("pull", "push", "delete")
