"""`dockyard namespace` and `dockyard member`: namespaces and who may do what in them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import (
    changes,
    clip,
    namespace_argument,
    print_fields,
    print_item,
    print_json,
    print_list,
    print_updated,
    remote,
    when,
    yes_option,
)

if TYPE_CHECKING:
    from dockyard.client import Client

ROLES = ("owner", "developer", "guest")


# -- namespaces -----------------------------------------------------------------------------------------

@click.group()
def namespace() -> None:
    """Manage namespaces (over the API).

    A namespace is the first part of repository names, with members, a default visibility and robots.
    """


def _visibility(ns: dict[str, Any]) -> str:
    return "public" if ns.get("public") else "private"


def _namespace_fields(ns: dict[str, Any]) -> None:
    print_fields([("name", ns.get("name")), ("description", ns.get("description")),
                  ("visibility", _visibility(ns)), ("push creates repositories", ns.get("auto_create")),
                  ("your role", ns.get("role")), ("created", when(ns.get("created_at")))])


@namespace.command("create")
@click.argument("name")
@click.option("--description", help="What the namespace holds.")
@click.option("--public/--private", "public", default=None,
              help="Default visibility of its repositories: public ones anyone may pull [default: private].")
@click.option("--auto-create/--no-auto-create", "auto_create", default=None,
              help="Whether a push may create a repository that does not exist yet [default: the server's].")
@remote(json=True)
def namespace_create(api: Client, name: str, description: str | None, public: bool | None,
                     auto_create: bool | None, as_json: bool) -> None:
    """Create the namespace NAME (you become its owner)."""
    ns = api.create_namespace(name, description=description, public=public, auto_create=auto_create) or {}
    if as_json:
        print_json(ns)
        return
    click.echo(f"created namespace {ns.get('name', name)} ({_visibility(dict(ns))}"
               f"{', pushes create repositories' if ns.get('auto_create') else ''})")


@namespace.command("list")
@remote(json=True)
def namespace_list(api: Client, as_json: bool) -> None:
    """List the namespaces you can see."""
    print_list(api.namespaces(), as_json, ["NAME", "VISIBILITY", "AUTO-CREATE", "YOUR ROLE", "CREATED", "DESCRIPTION"],
               lambda n: [n.get("name"), _visibility(dict(n)), n.get("auto_create"), n.get("role"),
                          when(n.get("created_at")), clip(n.get("description"), 60)],
               "no namespaces")


@namespace.command("show")
@click.argument("name")
@remote(json=True)
def namespace_show(api: Client, name: str, as_json: bool) -> None:
    """Show the namespace NAME."""
    print_item(dict(api.namespace(name) or {}), as_json, _namespace_fields)


@namespace.command("update")
@click.argument("name")
@click.option("--description", help="New description ('' clears it).")
@click.option("--public/--private", "public", default=None, help="New default visibility of its repositories.")
@click.option("--auto-create/--no-auto-create", "auto_create", default=None,
              help="Whether a push may create a repository that does not exist yet.")
@remote(json=True)
def namespace_update(api: Client, name: str, description: str | None, public: bool | None,
                     auto_create: bool | None, as_json: bool) -> None:
    """Change the namespace NAME (only the options given)."""
    ns = api.update_namespace(name, **changes(description=description, public=public, auto_create=auto_create))
    print_updated(ns, as_json, f"updated namespace {name}", lambda item: _namespace_fields(dict(item)))


@namespace.command("delete")
@click.argument("name")
@yes_option
@remote(json=False)
def namespace_delete(api: Client, name: str, yes: bool) -> None:
    """Delete the namespace NAME with its repositories, tags, members and robots."""
    if not yes:
        click.confirm(f"Delete namespace {name} with all its repositories, tags and robots?", abort=True, err=True)
    api.delete_namespace(name)
    click.echo(f"deleted namespace {name}")


# -- members --------------------------------------------------------------------------------------------

@click.group()
def member() -> None:
    """Manage the members of a namespace.

    Roles: owner (everything, including members and deletion), developer (pull, push, delete tags),
    guest (pull).
    """


@member.command("list")
@namespace_argument
@remote(json=True)
def member_list(api: Client, ns: str, as_json: bool) -> None:
    """List the members of NAMESPACE."""
    print_list(api.members(ns), as_json, ["USERNAME", "ROLE", "SINCE"],
               lambda m: [m.get("username"), m.get("role"), when(m.get("created_at"))], f"no members in {ns}")


@member.command("set")
@namespace_argument
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@remote(json=True)
def member_set(api: Client, ns: str, username: str, role: str, as_json: bool) -> None:
    """Give USERNAME the ROLE (owner, developer or guest) in NAMESPACE, adding or changing the membership."""
    result = api.set_member(ns, username, role)
    if as_json:
        print_json(result if result is not None else {"username": username, "role": role})
        return
    click.echo(f"{username} is now {role} of {ns}")


@member.command("remove")
@namespace_argument
@click.argument("username")
@remote(json=False)
def member_remove(api: Client, ns: str, username: str) -> None:
    """Remove USERNAME from NAMESPACE."""
    api.remove_member(ns, username)
    click.echo(f"removed {username} from {ns}")
