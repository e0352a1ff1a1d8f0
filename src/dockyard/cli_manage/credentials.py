"""`dockyard credential` and `dockyard robot`: the passwords that docker login takes, yours and your
namespaces' robots'."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import (
    clip,
    is_past,
    login_line,
    namespace_argument,
    new_password,
    print_json,
    print_list,
    remote,
    when,
)
from dockyard.cli_manage.params import ACTIONS, Duration, PermissionType

if TYPE_CHECKING:
    from dockyard.client import Client, Permission


# -- credentials ------------------------------------------------------------------------------------------

@click.group()
def credential() -> None:
    """Manage your passwords for docker login.

    A fixed registry password you choose, and temporary passwords (generated, shown once, expiring,
    optionally limited to some repositories and actions). Your account password stays separate.
    """


@credential.command("password")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@remote(json=False)
def credential_password(api: Client, password_stdin: bool) -> None:
    """Set your fixed registry password (for docker login; your account password stays as it is)."""
    api.set_registry_password(new_password(password_stdin, "New registry password"))
    user = api.username or "USER"
    click.echo(f"registry password of {user} set; log in with:")
    click.echo(f"  {login_line(user, api.registry_host)}")


@credential.command("temp")
@click.option("--ttl", type=Duration(), help="Lifetime: seconds, or 30m, 12h, 7d [default: the server's, 1 hour].")
@click.option("--repository", "-r", "repositories", multiple=True, metavar="PATTERN",
              help="Only these repositories (name or pattern like team/*); repeat for more [default: all of yours].")
@click.option("--action", "-a", "actions", multiple=True, type=click.Choice(ACTIONS),
              help="Only these actions; repeat for more [default: all you may do].")
@click.option("--description", help="What it is for (shown in `credential list`).")
@remote(json=True)
def credential_temp(api: Client, ttl: int | None, repositories: tuple[str, ...], actions: tuple[str, ...],
                    description: str | None, as_json: bool) -> None:
    """Create a temporary password, shown only this once."""
    t = api.create_temp_password(ttl_seconds=ttl, description=description, repositories=list(repositories),
                                 actions=list(actions)) or {}
    if as_json:
        print_json(t)
        return
    user = t.get("username") or api.username or "USER"
    scope = []
    if t.get("repositories") or repositories:
        scope.append("repositories " + ", ".join(t.get("repositories") or repositories))
    if t.get("actions") or actions:
        scope.append("actions " + ", ".join(t.get("actions") or actions))
    click.echo(f"temporary password {t.get('id', '')} for {user}, expires {when(t.get('expires_at'))}"
               + (f" ({'; '.join(scope)})" if scope else ""))
    click.echo("")
    click.echo(f"  {t.get('password')}")
    click.echo("")
    click.echo("It is shown only this once. Log in with it (paste it, then Enter and Ctrl-D):")
    click.echo(f"  {login_line(user, api.registry_host)}")


def _temp_status(t: dict[str, Any]) -> str:
    if t.get("revoked_at"):
        return "revoked"
    if is_past(t.get("expires_at")):
        return "expired"
    return "active"


@credential.command("list")
@remote(json=True)
def credential_list(api: Client, as_json: bool) -> None:
    """List your temporary passwords (the passwords themselves are never shown again)."""
    print_list(api.temp_passwords(), as_json,
               ["ID", "STATUS", "EXPIRES", "REPOSITORIES", "ACTIONS", "LAST USED", "DESCRIPTION"],
               lambda t: [t.get("id"), _temp_status(dict(t)), when(t.get("expires_at")), t.get("repositories") or "all",
                          t.get("actions") or "all", when(t.get("last_used_at")), clip(t.get("description"), 40)],
               "no temporary passwords")


@credential.command("revoke")
@click.argument("id")
@remote(json=False)
def credential_revoke(api: Client, id: str) -> None:
    """Revoke the temporary password ID (logins with it stop working within minutes at most)."""
    api.revoke_temp_password(id)
    click.echo(f"revoked temporary password {id}")


# -- robots -------------------------------------------------------------------------------------------------

@click.group()
def robot() -> None:
    """Manage the robot accounts of a namespace, for CI.

    A robot logs in as robot$NAMESPACE+NAME with a secret shown once, and may do what its permissions
    (repository patterns with actions) allow, until it expires or is disabled.
    """


def _robot_arguments(fn: Callable[..., Any]) -> Callable[..., Any]:
    """NAMESPACE NAME: the robot's namespace and its name in it."""
    return namespace_argument(click.argument("name")(fn))


def _robot_name(ns: str, name: str, r: dict[str, Any] | None = None) -> str:
    return str((r or {}).get("username") or f"robot${ns}+{name}")


def _permissions(perms: Any) -> str:
    if not perms:
        return "-"
    return " ".join(f"{p.get('repositories', '*')}:{','.join(p.get('actions', []))}" for p in perms if isinstance(p, dict))


def _robot_status(r: dict[str, Any]) -> str:
    if r.get("disabled"):
        return "disabled"
    if is_past(r.get("expires_at")):
        return "expired"
    return "active"


@robot.command("create")
@_robot_arguments
@click.option("--permission", "-p", "permissions", multiple=True, required=True, type=PermissionType(),
              help="PATTERN:ACTIONS, e.g. 'app-*:pull,push' or '*:pull'; a PATTERN without '/' is relative to the "
                   "namespace, one with '/' is a full name (acme/team/*). ACTIONS: pull, push, delete or *. "
                   "Repeat for more.")
@click.option("--ttl", type=Duration(), help="Expire after this long: seconds, or 30m, 12h, 90d [default: never].")
@click.option("--description", help="What it is for.")
@remote(json=True)
def robot_create(api: Client, ns: str, name: str, permissions: tuple[Permission, ...], ttl: int | None,
                 description: str | None, as_json: bool) -> None:
    """Create the robot NAME in NAMESPACE; its secret is shown only this once."""
    r = api.create_robot(ns, name, list(permissions), description=description, ttl_seconds=ttl) or {}
    if as_json:
        print_json(r)
        return
    username = _robot_name(ns, name, dict(r))
    expiry = when(r.get("expires_at")) if r.get("expires_at") else "never"
    click.echo(f"created robot {username} ({_permissions(r.get('permissions') or permissions)}; expires {expiry})")
    click.echo("")
    click.echo(f"  username: {username}")
    click.echo(f"  secret:   {r.get('secret')}")
    click.echo("")
    click.echo("The secret is shown only this once. Log in with it (note the quotes around the user name):")
    click.echo(f"  {login_line(username, api.registry_host)}")


@robot.command("list")
@namespace_argument
@remote(json=True)
def robot_list(api: Client, ns: str, as_json: bool) -> None:
    """List the robots of NAMESPACE."""
    print_list(api.robots(ns), as_json, ["USERNAME", "STATUS", "PERMISSIONS", "EXPIRES", "LAST USED", "DESCRIPTION"],
               lambda r: [_robot_name(ns, str(r.get("name")), dict(r)), _robot_status(dict(r)),
                          _permissions(r.get("permissions")), when(r.get("expires_at")) if r.get("expires_at") else "never",
                          when(r.get("last_used_at")), clip(r.get("description"), 40)],
               f"no robots in {ns}")


@robot.command("rotate")
@_robot_arguments
@remote(json=True)
def robot_rotate(api: Client, ns: str, name: str, as_json: bool) -> None:
    """Give the robot NAME a new secret (shown once); the old one stops working."""
    r = api.rotate_robot(ns, name) or {}
    if as_json:
        print_json(r)
        return
    click.echo(f"new secret of {_robot_name(ns, name, dict(r))} (shown only this once; the old one no longer works):")
    click.echo("")
    click.echo(f"  {r.get('secret')}")


@robot.command("disable")
@_robot_arguments
@remote(json=False)
def robot_disable(api: Client, ns: str, name: str) -> None:
    """Disable the robot NAME: it can no longer log in, pull or push."""
    api.update_robot(ns, name, disabled=True)
    click.echo(f"disabled {_robot_name(ns, name)}")


@robot.command("enable")
@_robot_arguments
@remote(json=False)
def robot_enable(api: Client, ns: str, name: str) -> None:
    """Enable the robot NAME again."""
    api.update_robot(ns, name, disabled=False)
    click.echo(f"enabled {_robot_name(ns, name)}")


@robot.command("delete")
@_robot_arguments
@remote(json=False)
def robot_delete(api: Client, ns: str, name: str) -> None:
    """Delete the robot NAME."""
    api.delete_robot(ns, name)
    click.echo(f"deleted {_robot_name(ns, name)}")
