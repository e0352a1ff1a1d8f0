"""The web console's users page (/console/users), for administrators only: the list of users,
creating one, disabling and enabling, granting and revoking administration (never from the last
active administrator), and resetting a password; what each change does to the user's console
sessions and logins; and what a non-administrator gets instead.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.auth.passwords import hash_password
from dockyard.meta.tables import console_sessions, users
from tests.conftest import ADMIN
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    BASE,
    PASSWORD,
    SESSION,
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
    post,
    registry,
    texts,
    v2_status,
)
from tests.integration.helpers import no_server_errors  # noqa: F401

NEW_PASSWORD = "carol-password-1"


def user_rows(html: str) -> dict[str, tuple[str, str]]:
    """user name -> (role, status) as the users page's rows show them."""
    rows = re.findall(r'<tr data-testid="user-row" data-user="([^"]+)">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>'
                      r'\s*<td>([^<]*)</td>', html)
    assert len(rows) == len(elements(html, "user-row")), html[:2000]
    return {name: (role, status) for name, role, status in rows}


def listed(client: TestClient) -> dict[str, tuple[str, str]]:
    page = client.get("/console/users")
    assert page.status_code == 200, page.text[:500]
    return user_rows(page.text)


def create_user(client: TestClient, username: str, password: str = NEW_PASSWORD, confirm: str | None = None,
                **fields: str) -> httpx.Response:
    return post(client, "/console/users", username=username, password=password,
                confirm=password if confirm is None else confirm, **fields)


def change(client: TestClient, username: str, what: str, **fields: str) -> httpx.Response:
    return post(client, f"/console/users/{username}", change=what, **fields)


def ended(client: TestClient) -> bool:
    """Whether the client's console session no longer opens pages."""
    r = client.get("/console/repositories")
    return r.status_code == 303 and urlsplit(location(r)).path == "/console/login"


def sessions_of(services: Any, username: str) -> int:
    with services.db.read() as conn:
        return len(conn.execute(select(console_sessions.c.id).join(users, users.c.id == console_sessions.c.user_id)
                                .where(users.c.username == username)).all())


# -- who sees the page ------------------------------------------------------------------------------------
def test_administrator_sees_the_users_and_the_nav_link(console: TestClient, services: Any) -> None:
    add_user(services)
    services.users.set_disabled("bob", True)
    page = console.get("/console/users")
    assert page.status_code == 200
    assert attr(page.text, "user-row", "data-user") == ["admin", "bob"]
    assert user_rows(page.text) == {"admin": ("administrator", "active"), "bob": ("user", "disabled")}
    assert elements(page.text, "user-create")
    assert attr(page.text, "nav-users", "href") == ["/console/users"]
    assert attr(page.text, "nav-users", "aria-current") == ["page"]
    other = console.get("/console/repositories").text
    assert attr(other, "nav-users", "href") == ["/console/users"]
    assert "aria-current" not in elements(other, "nav-users")[0]["attrs"]


def test_users_page_needs_a_login(app: Starlette, registry: TestClient, services: Any) -> None:
    anon = console_client(app)
    target = location(anon.get("/console/users"))
    assert urlsplit(target).path == "/console/login"
    assert parse_qs(urlsplit(target).query)["next"] == ["/console/users"]
    r = anon.post("/console/users", data={"username": "carol", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                          "csrf": "x"})
    assert urlsplit(location(r)).path == "/console/login"
    r = anon.post("/console/users/admin", data={"change": "disabled", "value": "true", "csrf": "x"})
    assert urlsplit(location(r)).path == "/console/login"
    assert services.users.get("carol") is None
    assert not services.users.get("admin").disabled


def test_non_administrator_gets_no_users_page(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    assert elements(bob.get("/console/repositories").text, "nav-users") == []
    r = bob.get("/console/users")
    assert r.status_code == 403
    assert texts(r.text, "error-message") == ["administrators only"]
    assert elements(r.text, "user-row") == [] and elements(r.text, "user-create") == []
    assert elements(r.text, "nav-users") == []

    attempts = [
        ("/console/users", {"username": "carol", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "is_admin": "on"}),
        ("/console/users/bob", {"change": "is_admin", "value": "true"}),
        ("/console/users/admin", {"change": "disabled", "value": "true"}),
        ("/console/users/admin", {"change": "is_admin", "value": "false"}),
        ("/console/users/admin", {"change": "password", "password": "taken-over-1", "confirm": "taken-over-1"}),
    ]
    for path, form in attempts:
        r = post(bob, path, **form)
        assert r.status_code == 303, (path, r.status_code)
        assert flashes(bob, r, "error") == ["administrators only"], path
    assert services.users.get("carol") is None
    assert not services.users.get("bob").is_admin
    admin = services.users.get("admin")
    assert admin.is_admin and not admin.disabled
    assert not ended(console)
    assert login(console_client(app), *ADMIN).status_code == 303
    assert login(console_client(app), "admin", "taken-over-1").status_code == 401


# -- creating users ---------------------------------------------------------------------------------------
def test_create_a_user_who_can_log_in(app: Starlette, console: TestClient, services: Any) -> None:
    r = create_user(console, "carol")
    assert location(r) == "/console/users"
    assert flashes(console, r, "ok") == ["User carol created."]
    assert listed(console) == {"admin": ("administrator", "active"), "carol": ("user", "active")}
    carol = logged_in(app, "carol", NEW_PASSWORD)
    assert carol.get("/console/repositories").status_code == 200
    assert elements(carol.get("/console/repositories").text, "nav-users") == []
    assert carol.get("/console/users").status_code == 403
    assert v2_status(app, "carol", NEW_PASSWORD) == 200

    # an administrator, with a name of dots and an @ (its forms post to /console/users/<name>)
    r = create_user(console, "jane.doe@example.com", "jane-password-1", is_admin="on")
    assert flashes(console, r, "ok") == ["User jane.doe@example.com created."]
    assert listed(console)["jane.doe@example.com"] == ("administrator", "active")
    jane = logged_in(app, "jane.doe@example.com", "jane-password-1")
    assert attr(jane.get("/console/repositories").text, "nav-users", "href") == ["/console/users"]
    assert set(listed(jane)) == {"admin", "carol", "jane.doe@example.com"}
    r = change(console, "jane.doe@example.com", "disabled", value="true")
    assert flashes(console, r, "ok") == ["User jane.doe@example.com saved."]
    assert listed(console)["jane.doe@example.com"] == ("administrator", "disabled")

    services.events.dispatch_all()
    audit = console.get("/console/audit", params={"action": "user."}).text
    assert attr(audit, "audit-row", "data-action") == ["user.update", "user.create", "user.create"]
    assert NEW_PASSWORD not in audit and "jane-password-1" not in audit


@pytest.mark.parametrize(("form", "error"), [
    ({"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}, "The two passwords differ."),
    ({"password": "short", "confirm": "short"}, "a password has at least 8 characters"),
    ({"password": "", "confirm": ""}, "a password has at least 8 characters"),
    ({"password": "x" * 1025, "confirm": "x" * 1025}, "a password has at most 1024 characters"),
])
def test_create_a_user_with_a_bad_password_is_an_error_flash(console: TestClient, services: Any,
                                                             form: dict[str, str], error: str) -> None:
    r = post(console, "/console/users", username="carol", **form)
    assert flashes(console, r, "error") == [error]
    assert services.users.get("carol") is None
    assert set(listed(console)) == {"admin"}


def test_create_a_user_name_errors(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    for name in ("bob", "admin", " bob "):
        r = create_user(console, name)
        assert flashes(console, r, "error") == [f"user '{name.strip()}' exists already"], name
    for name in ("", "Bad Name", "-dash", "dash-", "a/b", "x" * 65, "名字"):
        r = create_user(console, name)
        errors = flashes(console, r, "error")
        assert len(errors) == 1 and errors[0].startswith("invalid username"), (name, errors)
    assert set(listed(console)) == {"admin", "bob"}
    assert login(console_client(app), "bob", NEW_PASSWORD).status_code == 401  # bob's password unchanged
    # the error goes back to the page of the form
    r = console.post("/console/users", data={"username": "bob", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                                             "csrf": csrf(console)}, headers={"Referer": f"{BASE}/console/users"})
    assert location(r) == "/console/users"


# -- changing users ---------------------------------------------------------------------------------------
def test_disable_and_enable_a_user(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    assert not ended(bob)
    r = change(console, "bob", "disabled", value="true")
    assert location(r) == "/console/users"
    assert flashes(console, r, "ok") == ["User bob saved."]
    assert listed(console)["bob"] == ("user", "disabled")
    assert ended(bob)
    assert sessions_of(services, "bob") == 0
    assert login(console_client(app), "bob", PASSWORD).status_code == 401
    assert v2_status(app, "bob", PASSWORD) == 401
    assert not ended(console)  # the administrator's own session goes on

    r = change(console, "bob", "disabled", value="false")
    assert flashes(console, r, "ok") == ["User bob saved."]
    assert listed(console)["bob"] == ("user", "active")
    assert ended(bob)  # the ended session does not come back
    assert v2_status(app, "bob", PASSWORD) == 200
    again = logged_in(app, "bob", PASSWORD)
    assert again.get("/console/repositories").status_code == 200


def test_make_and_revoke_administrator(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    assert bob.get("/console/users").status_code == 403
    r = change(console, "bob", "is_admin", value="true")
    assert location(r) == "/console/users"
    assert flashes(console, r, "ok") == ["User bob saved."]
    assert listed(console)["bob"] == ("administrator", "active")
    # bob's session goes on, now as an administrator
    assert attr(bob.get("/console/repositories").text, "nav-users", "href") == ["/console/users"]
    assert set(listed(bob)) == {"admin", "bob"}

    r = change(console, "bob", "is_admin", value="false")
    assert flashes(console, r, "ok") == ["User bob saved."]
    assert listed(console)["bob"] == ("user", "active")
    assert not ended(bob)
    assert bob.get("/console/users").status_code == 403
    assert elements(bob.get("/console/repositories").text, "nav-users") == []


def test_the_last_active_administrator_keeps_administration(app: Starlette, console: TestClient,
                                                            services: Any) -> None:
    add_user(services)
    for what, value in (("is_admin", "false"), ("disabled", "true")):
        r = change(console, "admin", what, value=value)
        assert flashes(console, r, "error") == ["'admin' is the last active administrator"], what
    assert listed(console)["admin"] == ("administrator", "active")

    # a disabled administrator does not count
    assert flashes(console, change(console, "bob", "is_admin", value="true"), "ok")
    assert flashes(console, change(console, "bob", "disabled", value="true"), "ok")
    r = change(console, "admin", "is_admin", value="false")
    assert flashes(console, r, "error") == ["'admin' is the last active administrator"]

    # an active one does: then the administrator may step down, and bob is the last one
    assert flashes(console, change(console, "bob", "disabled", value="false"), "ok")
    r = change(console, "admin", "is_admin", value="false")
    assert location(r) == "/console/repositories"  # the users page is no longer theirs to see
    assert services.users.get("admin").is_admin is False
    assert console.get("/console/users").status_code == 403
    assert elements(console.get("/console/repositories").text, "nav-users") == []
    bob = logged_in(app, "bob", PASSWORD)
    assert listed(bob) == {"admin": ("user", "active"), "bob": ("administrator", "active")}
    for what, value in (("is_admin", "false"), ("disabled", "true")):
        r = change(bob, "bob", what, value=value)
        assert flashes(bob, r, "error") == ["'bob' is the last active administrator"], what
    assert listed(bob)["bob"] == ("administrator", "active")


def test_reset_a_password(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    for password, confirm, error in (("bob-new-password", "bob-other-password", "The two passwords differ."),
                                     ("short", "short", "a password has at least 8 characters")):
        r = change(console, "bob", "password", password=password, confirm=confirm)
        assert flashes(console, r, "error") == [error]
    assert not ended(bob)  # a refused reset changes nothing
    assert login(console_client(app), "bob", PASSWORD).status_code == 303

    r = change(console, "bob", "password", password="bob-new-password", confirm="bob-new-password")
    assert location(r) == "/console/users"
    assert flashes(console, r, "ok") == ["User bob saved."]
    assert ended(bob)
    assert sessions_of(services, "bob") == 0
    assert login(console_client(app), "bob", PASSWORD).status_code == 401
    assert login(console_client(app), "bob", "bob-new-password").status_code == 303
    assert v2_status(app, "bob", PASSWORD) == 401
    assert v2_status(app, "bob", "bob-new-password") == 200
    assert listed(console)["bob"] == ("user", "active")
    services.events.dispatch_all()
    assert "bob-new-password" not in console.get("/console/audit").text


def test_a_change_needs_true_or_false(console: TestClient, services: Any) -> None:
    add_user(services)
    services.users.set_disabled("bob", True)
    for value in ("", "yes", "1"):
        r = change(console, "bob", "disabled", value=value)
        assert flashes(console, r, "error") == ["The value must be true or false."], value
    assert services.users.get("bob").disabled is True


def test_unknown_users_and_changes_are_error_flashes(console: TestClient, services: Any) -> None:
    add_user(services)
    r = change(console, "nobody", "disabled", value="true")
    assert flashes(console, r, "error") == ["user 'nobody' not found"]
    for form in ({"change": "username", "value": "eve"}, {"change": ""}, {}):
        r = post(console, "/console/users/bob", **form)
        assert flashes(console, r, "error") == ["Nothing to change."], form
    bob = services.users.get("bob")
    assert not bob.disabled and not bob.is_admin


def test_users_posts_need_the_csrf_token(app: Starlette, console: TestClient, services: Any) -> None:
    add_user(services)
    bob = logged_in(app, "bob", PASSWORD)
    foreign = csrf(bob)
    attempts = [
        ("/console/users", {"username": "carol", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
        ("/console/users/bob", {"change": "disabled", "value": "true"}),
        ("/console/users/bob", {"change": "is_admin", "value": "true"}),
        ("/console/users/bob", {"change": "password", "password": "bob-new-password", "confirm": "bob-new-password"}),
    ]
    for path, form in attempts:
        for token in (None, "", "wrong", foreign):
            data = form if token is None else {**form, "csrf": token}
            r = console.post(path, data=data)
            assert r.status_code == 403, (path, token, r.status_code, r.text[:300])
            assert "The form has expired" in r.text
        r = console.post(path, data={**form, "csrf": csrf(console)}, headers={"Origin": "https://evil.com"})
        assert r.status_code == 403, path
    assert listed(console) == {"admin": ("administrator", "active"), "bob": ("user", "active")}
    assert not ended(bob)
    assert login(console_client(app), "bob", PASSWORD).status_code == 303
    services.events.dispatch_all()
    assert attr(console.get("/console/audit", params={"action": "user."}).text, "audit-row", "data-action") == []


def test_users_list_has_pages(console: TestClient, services: Any) -> None:
    hashed = hash_password("some-password-1")
    names = [f"user{i:03d}" for i in range(205)]
    for name in names:
        services.users.create(name, hashed)
    first = console.get("/console/users").text
    assert attr(first, "user-row", "data-user") == ["admin", *names[:199]]
    following = re.findall(r'<a href="(/console/users\?after=[^"]+)"', first)
    assert following == [f"/console/users?after={names[198]}"]
    second = console.get(following[0]).text
    assert attr(second, "user-row", "data-user") == names[199:]
    assert not re.findall(r'<a href="/console/users\?after=', second)
