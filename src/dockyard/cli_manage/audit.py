"""`dockyard audit`, `dockyard whoami` and `dockyard user create-remote`: the audit log and accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dockyard.cli_manage.common import (
    clip,
    new_password,
    print_fields,
    print_json,
    print_list,
    remote,
    when,
)

if TYPE_CHECKING:
    from dockyard.client import Client


@click.command()
@click.option("--actor", metavar="NAME", help="Only what this user or robot did.")
@click.option("--action", metavar="ACTION", help="Only these actions (a prefix: 'repository.' matches all of them).")
@click.option("--target", metavar="TARGET", help="Only events on this target (a prefix: a namespace matches its repositories).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@remote(json=True)
def audit(api: Client, actor: str | None, action: str | None, target: str | None, limit: int, as_json: bool) -> None:
    """Show the audit log, newest first.

    Who did what, to what, when and from where: every management action, push and delete.
    """
    print_list(api.audit(actor=actor, action=action, target=target, limit=limit), as_json,
               ["ID", "AT", "ACTOR", "ACTION", "TARGET", "FROM", "DETAIL"],
               lambda e: [e.get("id"), when(e.get("at")), e.get("actor"), e.get("action"), e.get("target"),
                          e.get("remote"), clip(e.get("detail"), 60)],
               "no audit events")


@click.command()
@remote(json=True)
def whoami(api: Client, as_json: bool) -> None:
    """Show the account the other commands act as."""
    me = api.me() or {}
    if as_json:
        print_json(me)
        return
    roles = me.get("namespaces") or {}
    print_fields([("username", me.get("username")), ("kind", me.get("kind", "user")),
                  ("administrator", me.get("is_admin", False)), ("read-only", me.get("read_only", False)),
                  ("namespaces", " ".join(f"{ns}:{role}" for ns, role in sorted(roles.items())) or None),
                  ("registry", api.url)])


@click.command("create-remote")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the new user's password from standard input.")
@remote(json=True)
def user_create_remote(api: Client, username: str, admin: bool, password_stdin: bool, as_json: bool) -> None:
    """Create a user through the API of a running registry (administrators only).

    `dockyard user add` does the same on this machine's database directly.
    """
    password = new_password(password_stdin, f"Password for the new user {username}")
    created = api.create_user(username, password, is_admin=admin) or {}
    if as_json:
        print_json(created)
        return
    click.echo(f"created user {created.get('username', username)}{' (administrator)' if admin else ''}")
