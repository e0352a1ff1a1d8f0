"""`dockyard repo`: repositories, their settings and their tags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import (
    changes,
    clip,
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


@click.group()
def repo() -> None:
    """Manage repositories (over the API).

    Repositories are named NAMESPACE/NAME[/...]; each has a summary, a description, a visibility, and
    tags with their pull counts.
    """


def _visibility(r: dict[str, Any]) -> str:
    effective = "public" if r.get("public") else "private"
    return effective if r.get("visibility") else f"{effective}, the namespace's default"


def _repo_fields(r: dict[str, Any]) -> None:
    print_fields([("name", r.get("name")), ("summary", r.get("summary")), ("description", r.get("description")),
                  ("visibility", _visibility(r)), ("created", when(r.get("created_at"))),
                  ("last push", when(r.get("last_push_at")))])


@repo.command("create")
@click.argument("name")
@click.option("--summary", help="One line about the image.")
@click.option("--description", help="A longer description (Markdown).")
@click.option("--visibility", type=click.Choice(["public", "private"]),
              help="Override the namespace's default visibility.")
@remote(json=True)
def repo_create(api: Client, name: str, summary: str | None, description: str | None, visibility: str | None,
                as_json: bool) -> None:
    """Create the repository NAME (NAMESPACE/NAME) before its first push."""
    r = api.create_repository(name, summary=summary, description=description, visibility=visibility) or {}
    if as_json:
        print_json(r)
        return
    click.echo(f"created repository {r.get('name', name)} ({_visibility(dict(r))})")
    click.echo(f"push to it with: docker push {api.registry_host}/{r.get('name', name)}:TAG")


@repo.command("list")
@click.option("--namespace", "-n", "ns", metavar="NAMESPACE", help="Only the repositories of this namespace.")
@click.option("--search", "-s", metavar="TEXT", help="Only repositories whose name contains TEXT.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@remote(json=True)
def repo_list(api: Client, ns: str | None, search: str | None, limit: int | None, as_json: bool) -> None:
    """List the repositories you can see."""
    print_list(api.repositories(namespace=ns, search=search, limit=limit), as_json,
               ["NAME", "VISIBILITY", "LAST PUSH", "SUMMARY"],
               lambda r: [r.get("name"), "public" if r.get("public") else "private", when(r.get("last_push_at")),
                          clip(r.get("summary"), 60)],
               "no repositories")


@repo.command("show")
@click.argument("name")
@remote(json=True)
def repo_show(api: Client, name: str, as_json: bool) -> None:
    """Show the repository NAME."""
    print_item(dict(api.repository(name) or {}), as_json, _repo_fields)


@repo.command("update")
@click.argument("name")
@click.option("--summary", help="New summary ('' clears it).")
@click.option("--description", help="New description ('' clears it).")
@click.option("--visibility", type=click.Choice(["public", "private", "inherit"]),
              help="public, private, or inherit the namespace's default.")
@remote(json=True)
def repo_update(api: Client, name: str, summary: str | None, description: str | None, visibility: str | None,
                as_json: bool) -> None:
    """Change the repository NAME (only the options given)."""
    fields = changes(summary=summary, description=description, visibility=visibility)
    if fields.get("visibility") == "inherit":
        fields["visibility"] = None
    r = api.update_repository(name, **fields)
    print_updated(r, as_json, f"updated repository {name}", lambda item: _repo_fields(dict(item)))


@repo.command("delete")
@click.argument("name")
@yes_option
@remote(json=False)
def repo_delete(api: Client, name: str, yes: bool) -> None:
    """Delete the repository NAME with all its tags and manifests (blobs go at the next garbage collection)."""
    if not yes:
        click.confirm(f"Delete repository {name} with all its tags?", abort=True, err=True)
    api.delete_repository(name)
    click.echo(f"deleted repository {name}")


@repo.command("tags")
@click.argument("name")
@remote(json=True)
def repo_tags(api: Client, name: str, as_json: bool) -> None:
    """List the tags of the repository NAME with their digests and pull counts."""
    print_list(api.tags(name), as_json, ["TAG", "DIGEST", "PULLS", "LAST PULLED"],
               lambda t: [t.get("name"), t.get("digest"), t.get("pulls", 0), when(t.get("last_pulled_at"))],
               f"no tags in {name}")
