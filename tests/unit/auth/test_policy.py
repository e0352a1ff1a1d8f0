"""The access rules of auth/policy.py, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.auth.policy import Principal, grant_actions, repository_actions
from dockyard.core.access import RepositoryFacts, namespace_of
from dockyard.core.scopes import Scope
from dockyard.meta.credentials import Robot, TempPassword
from dockyard.meta.users import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user(name: str = "ann", admin: bool = False, disabled: bool = False) -> User:
    return User(1, name, "h", admin, disabled, NOW)


def facts(name: str = "team/app", exists: bool = True, public: bool = False, ns: bool = True, auto: bool = True) -> RepositoryFacts:
    return RepositoryFacts(name=name, namespace=namespace_of(name), namespace_exists=ns, exists=exists, public=public,
                           auto_create=auto)


def robot(perms: list[dict[str, object]], ns: str = "team", disabled: bool = False) -> Robot:
    return Robot(1, ns, "ci", None, perms, disabled, NOW, None, None, None, "x")  # type: ignore[arg-type]


def temp(repos: list[str] | None, actions: list[str] | None) -> TempPassword:
    return TempPassword("t1", "ann", None, repos, actions, NOW, NOW, None, None, "x")


def test_namespace_of() -> None:
    assert namespace_of("team/app") == "team"
    assert namespace_of("team/sub/app") == "team"
    assert namespace_of("busybox") == "library"


@pytest.mark.parametrize("role, expected", [("owner", {"pull", "push", "delete"}), ("developer", {"pull", "push", "delete"}),
                                            ("guest", {"pull"}), (None, set())])
def test_roles(role: str | None, expected: set[str]) -> None:
    assert repository_actions(Principal(user=user()), role, facts()) == expected


def test_anonymous_pulls_public_only() -> None:
    assert repository_actions(None, None, facts(public=True)) == {"pull"}
    assert repository_actions(None, None, facts(public=False)) == set()
    assert repository_actions(None, None, facts(public=True, exists=False)) == set()


def test_admin_everything_even_without_namespace() -> None:
    assert repository_actions(Principal(user=user(admin=True)), None, facts(exists=False, ns=False)) == {"pull", "push", "delete"}


def test_disabled_user_gets_only_public() -> None:
    assert repository_actions(Principal(user=user(disabled=True)), "owner", facts(public=True)) == {"pull"}


def test_push_creates_only_where_the_namespace_allows() -> None:
    p = Principal(user=user())
    assert "push" in repository_actions(p, "developer", facts(exists=False))
    assert "push" not in repository_actions(p, "developer", facts(exists=False, auto=False))
    assert "push" not in repository_actions(p, "developer", facts(exists=False, ns=False))
    assert "push" in repository_actions(p, "developer", facts(exists=True, auto=False))


def test_robot_patterns_stay_in_their_namespace() -> None:
    r = Principal(robot=robot([{"repositories": "app-*", "actions": ["pull", "push"]}]))
    assert repository_actions(r, None, facts("team/app-web")) == {"pull", "push"}
    assert repository_actions(r, None, facts("team/db")) == set()
    assert repository_actions(r, None, facts("other/app-web")) == set()
    disabled = Principal(robot=robot([{"repositories": "*", "actions": ["pull"]}], disabled=True))
    assert repository_actions(disabled, None, facts("team/app")) == set()


def test_temp_password_narrows_the_user() -> None:
    p = Principal(user=user(), temp=temp(["team/app*"], ["pull"]))
    assert repository_actions(p, "owner", facts("team/app")) == {"pull"}
    assert repository_actions(p, "owner", facts("team/db")) == set()
    assert repository_actions(Principal(user=user(), temp=temp(None, None)), "guest", facts()) == {"pull"}
    admin_temp = Principal(user=user(admin=True), temp=temp(["team/x"], ["pull", "push"]))
    assert repository_actions(admin_temp, None, facts("team/app")) == set()
    assert not admin_temp.is_admin


def test_grant_keeps_the_order_asked_and_expands_star() -> None:
    assert grant_actions(Scope("repository", "a/b", ("push", "pull")), {"pull"}) == ("pull",)
    assert grant_actions(Scope("repository", "a/b", ("*",)), {"pull", "push", "delete"}) == ("pull", "push", "delete")
