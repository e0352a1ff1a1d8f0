"""Namespaces in the web console: creating, editing and deleting them, members and their roles,
robot accounts, and what a non-administrator (a developer of one namespace) sees and may do.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    BASE,
    PASSWORD,
    add_user,
    app,
    attr,
    console,
    console_client,
    csrf,
    elements,
    flashes,
    location,
    logged_in,
    login,
    make_namespace,
    make_repository,
    post,
    refusal,
    registry,
    set_member,
    texts,
    v2_status,
    v2_status,
)
from tests.integration.helpers import no_server_errors  # noqa: F401


# -- namespaces -------------------------------------------------------------------------------------------
def test_namespace_lifecycle(console: TestClient, services: Any) -> None:
    add_user(services)
    r = post(console, "/console/namespaces", name="team", description="The team", public="")
    assert location(r) == "/console/namespaces/team"
    assert flashes(console, r, "ok") == ["Namespace team created."]
    page = console.get("/console/namespaces").text
    assert attr(page, "namespace-row", "data-name") == ["team"]
    assert "The team" in texts(page, "namespace-row")[0]

    r = post(console, "/console/namespaces/team", description="Our images", public="on", auto_create="on")
    assert flashes(console, r, "ok") == ["Namespace team saved."]
    ns = services.namespaces.get("team")
    assert ns.description == "Our images" and ns.public and ns.auto_create
    show = console.get("/console/namespaces/team").text
    assert "Our images" in show and "public" in show

    r = set_member(console, "team", "bob", "developer")
    assert flashes(console, r, "ok") == ["bob is now developer of team."]
    assert attr(console.get("/console/namespaces/team").text, "member-row", "data-user") == ["admin", "bob"]
    r = set_member(console, "team", "bob", "guest")
    assert location(r) == "/console/namespaces/team"
    assert {m.username: m.role for m in services.namespaces.members("team")} == {"admin": "owner", "bob": "guest"}
    r = set_member(console, "team", "nobody", "guest")
    assert "nobody" in refusal(console, r)
    r = set_member(console, "team", "bob", "emperor")
    assert flashes(console, r, "error")
    assert {m.username: m.role for m in services.namespaces.members("team")} == {"admin": "owner", "bob": "guest"}

    r = post(console, "/console/namespaces/team/members/bob/remove")
    assert flashes(console, r, "ok") == ["bob removed from team."]
    assert attr(console.get("/console/namespaces/team").text, "member-row", "data-user") == ["admin"]
    r = post(console, "/console/namespaces/team/members/admin/remove")  # the last owner stays
    assert flashes(console, r, "error")
    assert [m.username for m in services.namespaces.members("team")] == ["admin"]

    r = post(console, "/console/namespaces/team/delete")
    assert location(r) == "/console/namespaces"
    assert flashes(console, r, "ok") == ["Namespace team deleted with 0 repositories."]
    assert services.namespaces.get("team") is None
    assert console.get("/console/namespaces/team").status_code == 404


@pytest.mark.parametrize("name", ["Bad Name", "UPPER", "-dash", "a/b", "", "x" * 300, "名字"])
def test_invalid_namespace_name_is_an_error_flash(console: TestClient, services: Any, name: str) -> None:
    r = post(console, "/console/namespaces", name=name)
    errors = flashes(console, r, "error")
    assert len(errors) == 1 and errors[0]
    assert attr(console.get("/console/namespaces").text, "namespace-row", "data-name") == []
    assert services.namespaces.list(None, None, 10) == []


def test_duplicate_namespace_is_an_error_flash(console: TestClient) -> None:
    make_namespace(console, "team")
    r = post(console, "/console/namespaces", name="team")
    assert flashes(console, r, "error") == ["namespace 'team' exists already"]


def test_errors_go_back_to_the_page_of_the_form(console: TestClient) -> None:
    r = console.post("/console/namespaces", data={"name": "BAD", "csrf": csrf(console)},
                     headers={"Referer": f"{BASE}/console/namespaces?after=a"})
    assert location(r) == "/console/namespaces?after=a"
    r = console.post("/console/namespaces", data={"name": "BAD", "csrf": csrf(console)},
                     headers={"Referer": "https://evil.com/console/namespaces"})
    assert location(r) == "/console/repositories"


def test_user_text_is_escaped(console: TestClient) -> None:
    make_namespace(console, "team", description="<script>alert(1)</script>")
    make_repository(console, "team", "app", summary='"><img src=x onerror=alert(1)>')
    for path in ("/console/namespaces", "/console/namespaces/team", "/console/repositories", "/console/repo/team/app"):
        page = console.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page, path


# -- what a developer sees --------------------------------------------------------------------------------
@pytest.fixture
def bob(app: Starlette, console: TestClient, services: Any) -> TestClient:
    """bob, developer of the private namespace `team` (with team/app and a robot); `secret` is
    another private namespace (with secret/app) bob is not a member of."""
    add_user(services)
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    assert location(set_member(console, "team", "bob", "developer"))
    robot = post(console, "/console/namespaces/team/robots", robot="ci", action_pull="on")
    assert robot.status_code == 200 and texts(robot.text, "robot-secret")
    make_namespace(console, "secret")
    make_repository(console, "secret", "app")
    return logged_in(app, "bob", PASSWORD)


def test_robot_and_registry_secrets_do_not_open_the_console(app: Starlette, console: TestClient) -> None:
    make_namespace(console, "team")
    created = post(console, "/console/namespaces/team/robots", robot="ci", action_pull="on", action_push="on")
    secret = texts(created.text, "robot-secret")[0]
    assert secret.startswith("dkr_")
    assert v2_status(app, "robot$team+ci", secret) == 200
    assert login(console_client(app), "robot$team+ci", secret).status_code == 401


def test_developer_sees_only_their_namespaces(bob: TestClient) -> None:
    assert attr(bob.get("/console/namespaces").text, "namespace-row", "data-name") == ["team"]
    assert attr(bob.get("/console/repositories").text, "repository-row", "data-name") == ["team/app"]
    found = bob.get("/console/repositories", params={"q": "app"}).text
    assert attr(found, "repository-row", "data-name") == ["team/app"]
    for path in ("/console/namespaces/secret", "/console/repo/secret/app", "/console/repo/secret/app/-/versions",
                 "/console/repo/secret/app/-/settings", "/console/repo/secret/app/-/versions/latest"):
        r = bob.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "secret/app" not in "".join(texts(r.text, "repository-row"))
    assert bob.get("/console/repo/team/app").status_code == 200


def test_developer_does_not_see_or_manage_robots(bob: TestClient, services: Any) -> None:
    page = bob.get("/console/namespaces/team").text
    assert elements(page, "robot-row") == [] and elements(page, "robot-create") == []
    assert "robot$team+ci" not in page
    assert elements(page, "namespace-delete") == [] and elements(page, "member-set") == []
    r = post(bob, "/console/namespaces/team/robots", robot="evil", action_pull="on", action_push="on")
    assert flashes(bob, r, "error")
    assert [r.name for r in services.credentials.list_robots("team")] == ["ci"]
    for action in ("rotate", "disable", "delete"):
        r = post(bob, f"/console/namespaces/team/robots/ci/{action}", disabled="true")
        assert r.status_code in (303, 403, 404), (action, r.status_code)
        assert "dkr_" not in r.text
    robot = services.credentials.get_robot("team", "ci")
    assert robot is not None and not robot.disabled and robot.rotated_at is None


def test_developer_cannot_delete_a_repository_or_the_namespace(bob: TestClient, console: TestClient,
                                                               services: Any) -> None:
    r = post(bob, "/console/repo/team/app/-/delete")
    assert flashes(bob, r, "error")
    assert console.get("/console/repo/team/app").status_code == 200
    r = post(bob, "/console/namespaces/team/delete")
    assert flashes(bob, r, "error")
    assert services.namespaces.get("team") is not None
    r = set_member(bob, "team", "bob", "owner")  # nor promote themselves
    assert flashes(bob, r, "error")
    assert {m.username: m.role for m in services.namespaces.members("team")}["bob"] == "developer"
    # nor another namespace's repository
    assert refusal(bob, post(bob, "/console/repo/secret/app/-/delete"))
    assert console.get("/console/repo/secret/app").status_code == 200


def test_developer_creates_and_edits_repositories(bob: TestClient) -> None:
    make_repository(bob, "team", "tool", summary="by bob")
    assert location(post(bob, "/console/repo/team/tool/-/settings", summary="changed")) == \
        "/console/repo/team/tool/-/settings"
    r = post(bob, "/console/repositories", namespace="secret", name="sneaky")
    assert refusal(bob, r)
    assert bob.get("/console/repo/secret/sneaky").status_code == 404


def test_robot_lifecycle(app: Starlette, console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    created = post(console, "/console/namespaces/team/robots", robot="ci", action_pull="on", description="CI")
    first = texts(created.text, "robot-secret")[0]
    assert v2_status(app, "robot$team+ci", first) == 200
    assert attr(console.get("/console/namespaces/team").text, "robot-row", "data-name") == ["ci"]

    rotated = post(console, "/console/namespaces/team/robots/ci/rotate")
    second = texts(rotated.text, "robot-secret")[0]
    assert second != first
    assert v2_status(app, "robot$team+ci", first) == 401 and v2_status(app, "robot$team+ci", second) == 200

    r = post(console, "/console/namespaces/team/robots/ci/edit", repositories="app-*", action_pull="on",
             action_push="on", ttl_days="30", description="CI pushes")
    assert flashes(console, r, "ok") == ["Robot ci saved."]
    robot = services.credentials.get_robot("team", "ci")
    assert robot.permissions == [{"repositories": "app-*", "actions": ["pull", "push"]}]
    assert robot.expires_at is not None and robot.description == "CI pushes"
    r = post(console, "/console/namespaces/team/robots/ci/edit", repositories="*")  # no permission chosen
    assert flashes(console, r, "error")
    assert services.credentials.get_robot("team", "ci").permissions[0]["repositories"] == "app-*"

    post(console, "/console/namespaces/team/robots/ci/disable", disabled="true")
    assert v2_status(app, "robot$team+ci", second) == 401
    post(console, "/console/namespaces/team/robots/ci/disable", disabled="false")
    assert v2_status(app, "robot$team+ci", second) == 200
    post(console, "/console/namespaces/team/robots/ci/delete")
    assert services.credentials.get_robot("team", "ci") is None
    assert v2_status(app, "robot$team+ci", second) == 401
