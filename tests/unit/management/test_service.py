"""The management use-cases without HTTP: who may do what, what they record in the audit log,
and that cached access decisions are dropped after a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.auth.policy import Principal
from dockyard.core.scopes import Scope
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from dockyard.management.service import Actor, ManagementService
from tests.conftest import hashed


@pytest.fixture
def mgmt(services: Any) -> ManagementService:
    return services.management


def actor(services: Any, username: str, remote: str = "10.0.0.1") -> Actor:
    return Actor(Principal(user=services.users.get(username), account_login=True), remote)


@pytest.fixture
def people(services: Any) -> dict[str, Actor]:
    for name in ("alice", "bob", "carol"):
        services.users.create(name, hashed("a-long-password"))
    return {name: actor(services, name) for name in ("admin", "alice", "bob", "carol")}


def test_read_only_principals(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    alice = people["alice"]
    assert not alice.read_only and people["admin"].is_admin
    ns = mgmt.create_namespace(alice, "team")
    assert ns.role == "owner"
    new = mgmt.create_temp_password(alice)
    temp_actor = Actor(Principal(user=alice.user, temp=new.temp))
    assert temp_actor.read_only
    with pytest.raises(Forbidden):
        mgmt.create_namespace(temp_actor, "other")
    robot = mgmt.create_robot(alice, "team", "ci", [{"repositories": "*", "actions": ["pull"]}]).robot
    robot_actor = Actor(Principal(robot=robot))
    assert robot_actor.read_only and robot_actor.name == "robot$team+ci"
    with pytest.raises(Forbidden):
        mgmt.delete_namespace(robot_actor, "team")
    with pytest.raises(Forbidden):  # limited credentials are for the registry only
        mgmt.get_namespace(robot_actor, "team")
    assert mgmt.whoami(robot_actor).kind == "robot"
    with pytest.raises(Unauthenticated):
        mgmt.whoami(Actor(None))
    # an administrator logged in with a temporary password is no administrator
    admin_temp = mgmt.create_temp_password(people["admin"]).temp
    assert not Actor(Principal(user=people["admin"].user, temp=admin_temp)).is_admin


def test_audit_records_actor_target_and_remote(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    mgmt.create_namespace(people["alice"], "team", public=True)
    mgmt.set_member(people["alice"], "team", "bob", "developer")
    mgmt.create_repository(people["bob"], "team/app", visibility="private")
    services.events.dispatch_all()  # the repository's audit record is its repository.created event's
    events = services.audit.query()
    assert [(e.actor, e.action, e.target, e.remote) for e in events] == [
        ("bob", "repository.create", "team/app", "10.0.0.1"),
        ("alice", "member.set", "team", "10.0.0.1"),
        ("alice", "namespace.create", "team", "10.0.0.1"),
    ]
    assert events[1].detail == {"username": "bob", "role": "developer", "previous": None}
    # refused calls record nothing
    with pytest.raises(Forbidden):
        mgmt.delete_namespace(people["bob"], "team")
    assert len(services.audit.query()) == 3


def test_role_changes_take_effect_at_once(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    alice, bob = people["alice"], people["bob"]
    mgmt.create_namespace(alice, "team")
    bob_p = bob.principal
    scope = Scope("repository", "team/app", ("pull", "push"))
    assert services.auth.allowed(bob_p, scope) == ()  # now cached for a few seconds
    mgmt.set_member(alice, "team", "bob", "developer")
    assert services.auth.allowed(bob_p, scope) == ("pull", "push")
    mgmt.set_member(alice, "team", "bob", "guest")
    assert services.auth.allowed(bob_p, scope) == ("pull",)
    mgmt.remove_member(alice, "team", "bob")
    assert services.auth.allowed(bob_p, scope) == ()
    mgmt.update_namespace(alice, "team", public=True)
    mgmt.create_repository(alice, "team/app")
    assert services.auth.allowed(None, scope) == ("pull",)


def test_last_owner_and_last_admin(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    alice, admin = people["alice"], people["admin"]
    mgmt.create_namespace(alice, "team")
    with pytest.raises(Conflict):
        mgmt.remove_member(admin, "team", "alice")
    with pytest.raises(Conflict):
        mgmt.set_member(admin, "team", "alice", "developer")
    mgmt.set_member(alice, "team", "bob", "owner")
    mgmt.set_member(alice, "team", "alice", "guest")
    with pytest.raises(Forbidden):  # alice is only a guest now
        mgmt.set_member(alice, "team", "alice", "owner")
    with pytest.raises(Conflict):
        mgmt.update_user(admin, "admin", is_admin=False)
    mgmt.update_user(admin, "alice", is_admin=True)
    mgmt.update_user(admin, "admin", is_admin=False)  # alice is an administrator still
    assert not services.users.get("admin").is_admin


def test_repositories_deleted_hook(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    seen: list[list[str]] = []
    mgmt.repositories_deleted = seen.append
    alice = people["alice"]
    mgmt.create_namespace(alice, "team")
    mgmt.create_repository(alice, "team/a")
    mgmt.create_repository(alice, "team/b/c")
    mgmt.delete_repository(alice, "team/a")
    mgmt.delete_namespace(alice, "team")
    assert seen == [["team/a"], ["team/b/c"]]
    with pytest.raises(NotFound):
        mgmt.delete_repository(alice, "team/a")


def test_validation(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    alice = people["alice"]
    mgmt.create_namespace(alice, "team")
    for bad in ("Team", "a/b", "../x", ""):
        with pytest.raises(Invalid):
            mgmt.create_namespace(alice, bad)
    with pytest.raises(Invalid):
        mgmt.create_repository(alice, "team/../../etc")
    with pytest.raises(Invalid):
        mgmt.create_repository(alice, "team/app", visibility="secret")
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci", [{"repositories": "other/*", "actions": ["pull"]}])
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci", [{"repositories": "*", "actions": ["rm"]}])
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci+x", [])
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci", [], ttl_seconds=5)
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci", [], ttl_seconds=600, expires_at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(Invalid):
        mgmt.create_robot(alice, "team", "ci", [], expires_at=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Invalid):
        mgmt.create_temp_password(alice, ttl_seconds=59)
    with pytest.raises(Invalid):
        mgmt.set_registry_password(alice, "short")
    with pytest.raises(Invalid):
        mgmt.list_namespaces(alice, None, 501)
    robot = mgmt.create_robot(alice, "team", "ci", [{"repositories": "team/app-*", "actions": ["push", "pull", "push"]}])
    assert robot.robot.permissions == [{"repositories": "team/app-*", "actions": ["push", "pull"]}]
    assert robot.secret.startswith("dkr_")


def test_temp_password_defaults(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    new = mgmt.create_temp_password(people["alice"], description="laptop")
    assert new.password.startswith(f"dkt_{new.temp.id}_") and len(new.temp.id) == 32
    life = (new.temp.expires_at - new.temp.created_at).total_seconds()
    assert abs(life - services.settings.auth.temp_password_ttl_seconds) < 5
    assert services.auth.check_password("alice", new.password) is not None
    mgmt.revoke_temp_password(people["alice"], new.temp.id)
    assert services.auth.check_password("alice", new.password) is None
    with pytest.raises(NotFound):
        mgmt.revoke_temp_password(people["bob"], new.temp.id)
    with pytest.raises(NotFound):
        mgmt.revoke_temp_password(people["alice"], "../../x")


def test_audit_visibility(services: Any, people: dict[str, Actor], mgmt: ManagementService) -> None:
    alice, bob = people["alice"], people["bob"]
    mgmt.create_namespace(alice, "team")
    mgmt.create_namespace(bob, "team_x")  # '_' must not act as a LIKE wildcard for "team_"
    mgmt.create_namespace(bob, "teamy")
    mgmt.create_robot(bob, "teamy", "ci", [])
    services.audit.record("ci", "manifest.push", "teamy/app:v1")
    services.audit.record("ci", "manifest.push", "team/app:v1")
    seen = {(e.action, e.target) for e in mgmt.query_audit(alice, None, None, None, None, None).items}
    assert seen == {("namespace.create", "team"), ("manifest.push", "team/app:v1")}
    bob_seen = {(e.action, e.target) for e in mgmt.query_audit(bob, None, None, None, None, None).items}
    assert ("robot.create", "robot$teamy+ci") in bob_seen and ("manifest.push", "teamy/app:v1") in bob_seen
    assert ("manifest.push", "team/app:v1") not in bob_seen
    assert len(mgmt.query_audit(people["admin"], None, None, None, None, None).items) == 6
    page = mgmt.query_audit(people["admin"], None, None, None, None, 4)
    rest = mgmt.query_audit(people["admin"], None, None, None, int(page.next or 0), 4)
    assert len(page.items) == 4 and len(rest.items) == 2 and rest.next is None
