"""`dockyard` subcommands that drive the management API (/api/v1) of a running registry over HTTP:
namespace, member, repo, credential, robot, audit and whoami.

Every command takes --url (DOCKYARD_URL, default http://127.0.0.1:5000) and --user
(DOCKYARD_USER); the account password comes from DOCKYARD_PASSWORD, or is asked for when standard
input is a terminal. Output is a table for people, or the API's JSON with --json.
The reference with examples is docs/cli.md.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dockyard.client import Client, Permission

DEFAULT_URL = "http://127.0.0.1:5000"  # dockyard.client.DEFAULT_URL (not imported: httpx loads lazily)
ROLES = ("owner", "developer", "guest")
ACTIONS = ("pull", "push", "delete")



# -- connection ---------------------------------------------------------------------------------------

def _interactive() -> bool:
    """Whether we may ask for missing credentials (tests replace this)."""
    return sys.stdin.isatty()


@contextmanager
def _session(url: str, user: str | None) -> Iterator["Client"]:
    from dockyard.client import Client, ClientError

    ctx = click.get_current_context()
    transport = (ctx.find_root().obj or {}).get("transport")  # tests pass an httpx.MockTransport
    password = os.environ.get("DOCKYARD_PASSWORD") or None
    if user is None and _interactive():
        user = click.prompt(f"Username at {url}", err=True)
    if user is not None and password is None:
        if not _interactive():
            raise click.ClickException(f"no password for {user!r}: set DOCKYARD_PASSWORD "
                                       "(or run the command in a terminal to be asked for it)")
        password = click.prompt(f"Password for {user} at {url}", hide_input=True, err=True)
    try:
        with Client(url, user, password, transport=transport) as api:
            yield api
    except ClientError as exc:
        hint = " (no user given: use --user or DOCKYARD_USER)" if exc.status == 401 and user is None else ""
        raise click.ClickException(exc.message + hint) from None


def remote(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --url and --user to a command; the function gets a connected `api: Client` first."""

    @functools.wraps(fn)
    def wrapper(url: str, user: str | None, **kwargs: Any) -> Any:
        with _session(url, user) as api:
            return fn(api, **kwargs)

    wrapper = click.option("--user", "-u", envvar="DOCKYARD_USER", metavar="NAME",
                           help="Account to act as (password: DOCKYARD_PASSWORD, or asked for). "
                                "Environment: DOCKYARD_USER.")(wrapper)
    wrapper = click.option("--url", envvar="DOCKYARD_URL", default=DEFAULT_URL, show_default=True, metavar="URL",
                           help="The registry's base URL. Environment: DOCKYARD_URL.")(wrapper)
    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")


# -- argument types -----------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Duration(click.ParamType):
    """Seconds, or a number with a unit: 90s, 30m, 12h, 7d, 2w."""

    name = "SECONDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            seconds = value
        else:
            m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", str(value).lower())
            if not m:
                self.fail(f"{value!r} is not a duration: use seconds (3600) or a number with s, m, h, d or w (12h)",
                          param, ctx)
            seconds = int(m.group(1)) * _UNITS.get(m.group(2) or "s", 1)
        if seconds <= 0:
            self.fail("a duration must be positive", param, ctx)
        return seconds


class PermissionType(click.ParamType):
    """PATTERN:ACTION[,ACTION...] where ACTION is pull, push, delete or * (all three)."""

    name = "PATTERN:ACTIONS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> "Permission":
        if isinstance(value, dict):
            return value  # type: ignore[return-value]
        pattern, sep, actions = str(value).rpartition(":")
        pattern = pattern.strip()
        if not sep or not pattern:
            self.fail(f"{value!r}: expected PATTERN:ACTIONS, e.g. 'app-*:pull,push'", param, ctx)
        wanted = [a.strip().lower() for a in actions.split(",") if a.strip()]
        if "*" in wanted:
            wanted = list(ACTIONS)
        unknown = [a for a in wanted if a not in ACTIONS]
        if unknown or not wanted:
            self.fail(f"{value!r}: actions must be among pull, push, delete (or *)", param, ctx)
        return {"repositories": pattern, "actions": sorted(set(wanted), key=ACTIONS.index)}


# -- output -------------------------------------------------------------------------------------------

def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _when(value: Any) -> str:
    """An API timestamp as `2025-01-31 14:05:09Z` (UTC); '-' for none."""
    if not value:
        return "-"
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _past(value: Any) -> bool:
    if not value:
        return False
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at <= datetime.now(UTC)


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value).replace("\n", " ")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> None:
    cells = [[_text(c) for c in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs) + 1
    for key, value in pairs:
        click.echo(f"{key + ':':<{width}} {_text(value)}")


def _visibility(ns: dict[str, Any]) -> str:
    return "public" if ns.get("public") else "private"


def _repo_visibility(repo: dict[str, Any]) -> str:
    effective = "public" if repo.get("public") else "private"
    return effective if repo.get("visibility") else f"{effective}, the namespace's default"


def _login_line(username: str, host: str) -> str:
    return f"docker login -u {shlex.quote(username)} --password-stdin {host}"


def _changes(**fields: Any) -> dict[str, Any]:
    changed = {k: v for k, v in fields.items() if v is not None}
    if not changed:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    return changed


# -- namespaces -----------------------------------------------------------------------------------------

@click.group()
def namespace() -> None:
    """Manage namespaces (over the API).

    A namespace is the first part of repository names, with members, a default visibility and robots.
    """


def _namespace_fields(ns: dict[str, Any]) -> None:
    _fields([("name", ns.get("name")), ("description", ns.get("description")),
             ("visibility", _visibility(ns)), ("push creates repositories", ns.get("auto_create")),
             ("your role", ns.get("role")), ("created", _when(ns.get("created_at")))])


@namespace.command("create")
@click.argument("name")
@click.option("--description", help="What the namespace holds.")
@click.option("--public/--private", "public", default=None,
              help="Default visibility of its repositories: public ones anyone may pull [default: private].")
@click.option("--auto-create/--no-auto-create", "auto_create", default=None,
              help="Whether a push may create a repository that does not exist yet [default: the server's].")
@json_option
@remote
def namespace_create(api: "Client", name: str, description: str | None, public: bool | None,
                     auto_create: bool | None, as_json: bool) -> None:
    """Create the namespace NAME (you become its owner)."""
    ns = api.create_namespace(name, description=description, public=public, auto_create=auto_create) or {}
    if as_json:
        _json(ns)
        return
    click.echo(f"created namespace {ns.get('name', name)} ({_visibility(dict(ns))}"
               f"{', pushes create repositories' if ns.get('auto_create') else ''})")


@namespace.command("list")
@json_option
@remote
def namespace_list(api: "Client", as_json: bool) -> None:
    """List the namespaces you can see."""
    items = list(api.namespaces())
    if as_json:
        _json(items)
        return
    _table(["NAME", "VISIBILITY", "AUTO-CREATE", "YOUR ROLE", "CREATED", "DESCRIPTION"],
           ([n.get("name"), _visibility(dict(n)), n.get("auto_create"), n.get("role"), _when(n.get("created_at")),
             _clip(_text(n.get("description")), 60)] for n in items), "no namespaces")


@namespace.command("show")
@click.argument("name")
@json_option
@remote
def namespace_show(api: "Client", name: str, as_json: bool) -> None:
    """Show the namespace NAME."""
    ns = api.namespace(name) or {}
    if as_json:
        _json(ns)
    else:
        _namespace_fields(dict(ns))


@namespace.command("update")
@click.argument("name")
@click.option("--description", help="New description ('' clears it).")
@click.option("--public/--private", "public", default=None, help="New default visibility of its repositories.")
@click.option("--auto-create/--no-auto-create", "auto_create", default=None,
              help="Whether a push may create a repository that does not exist yet.")
@json_option
@remote
def namespace_update(api: "Client", name: str, description: str | None, public: bool | None,
                     auto_create: bool | None, as_json: bool) -> None:
    """Change the namespace NAME (only the options given)."""
    ns = api.update_namespace(name, **_changes(description=description, public=public, auto_create=auto_create))
    if as_json:
        _json(ns)
        return
    click.echo(f"updated namespace {name}")
    if ns:
        _namespace_fields(dict(ns))


@namespace.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote
def namespace_delete(api: "Client", name: str, yes: bool) -> None:
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
@click.argument("ns", metavar="NAMESPACE")
@json_option
@remote
def member_list(api: "Client", ns: str, as_json: bool) -> None:
    """List the members of NAMESPACE."""
    items = list(api.members(ns))
    if as_json:
        _json(items)
        return
    _table(["USERNAME", "ROLE", "SINCE"], ([m.get("username"), m.get("role"), _when(m.get("created_at"))] for m in items),
           f"no members in {ns}")


@member.command("set")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@json_option
@remote
def member_set(api: "Client", ns: str, username: str, role: str, as_json: bool) -> None:
    """Give USERNAME the ROLE (owner, developer or guest) in NAMESPACE, adding or changing the membership."""
    result = api.set_member(ns, username, role)
    if as_json:
        _json(result if result is not None else {"username": username, "role": role})
        return
    click.echo(f"{username} is now {role} of {ns}")


@member.command("remove")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("username")
@remote
def member_remove(api: "Client", ns: str, username: str) -> None:
    """Remove USERNAME from NAMESPACE."""
    api.remove_member(ns, username)
    click.echo(f"removed {username} from {ns}")


# -- repositories ---------------------------------------------------------------------------------------

@click.group()
def repo() -> None:
    """Manage repositories (over the API).

    Repositories are named NAMESPACE/NAME[/...]; each has a summary, a description, a visibility, and
    tags with their pull counts.
    """


def _repo_fields(r: dict[str, Any]) -> None:
    _fields([("name", r.get("name")), ("summary", r.get("summary")), ("description", r.get("description")),
             ("visibility", _repo_visibility(r)), ("created", _when(r.get("created_at"))),
             ("last push", _when(r.get("last_push_at")))])


@repo.command("create")
@click.argument("name")
@click.option("--summary", help="One line about the image.")
@click.option("--description", help="A longer description (Markdown).")
@click.option("--visibility", type=click.Choice(["public", "private"]),
              help="Override the namespace's default visibility.")
@json_option
@remote
def repo_create(api: "Client", name: str, summary: str | None, description: str | None, visibility: str | None,
                as_json: bool) -> None:
    """Create the repository NAME (NAMESPACE/NAME) before its first push."""
    r = api.create_repository(name, summary=summary, description=description, visibility=visibility) or {}
    if as_json:
        _json(r)
        return
    click.echo(f"created repository {r.get('name', name)} ({_repo_visibility(dict(r))})")
    click.echo(f"push to it with: docker push {api.registry_host}/{r.get('name', name)}:TAG")


@repo.command("list")
@click.option("--namespace", "-n", "ns", metavar="NAMESPACE", help="Only the repositories of this namespace.")
@click.option("--search", "-s", metavar="TEXT", help="Only repositories whose name contains TEXT.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@json_option
@remote
def repo_list(api: "Client", ns: str | None, search: str | None, limit: int | None, as_json: bool) -> None:
    """List the repositories you can see."""
    items = list(api.repositories(namespace=ns, search=search, limit=limit))
    if as_json:
        _json(items)
        return
    _table(["NAME", "VISIBILITY", "LAST PUSH", "SUMMARY"],
           ([r.get("name"), "public" if r.get("public") else "private", _when(r.get("last_push_at")),
             _clip(_text(r.get("summary")), 60)] for r in items), "no repositories")


@repo.command("show")
@click.argument("name")
@json_option
@remote
def repo_show(api: "Client", name: str, as_json: bool) -> None:
    """Show the repository NAME."""
    r = api.repository(name) or {}
    if as_json:
        _json(r)
    else:
        _repo_fields(dict(r))


@repo.command("update")
@click.argument("name")
@click.option("--summary", help="New summary ('' clears it).")
@click.option("--description", help="New description ('' clears it).")
@click.option("--visibility", type=click.Choice(["public", "private", "inherit"]),
              help="public, private, or inherit the namespace's default.")
@json_option
@remote
def repo_update(api: "Client", name: str, summary: str | None, description: str | None, visibility: str | None,
                as_json: bool) -> None:
    """Change the repository NAME (only the options given)."""
    fields = _changes(summary=summary, description=description, visibility=visibility)
    if fields.get("visibility") == "inherit":
        fields["visibility"] = None
    r = api.update_repository(name, **fields)
    if as_json:
        _json(r)
        return
    click.echo(f"updated repository {name}")
    if r:
        _repo_fields(dict(r))


@repo.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote
def repo_delete(api: "Client", name: str, yes: bool) -> None:
    """Delete the repository NAME with all its tags and manifests (blobs go at the next garbage collection)."""
    if not yes:
        click.confirm(f"Delete repository {name} with all its tags?", abort=True, err=True)
    api.delete_repository(name)
    click.echo(f"deleted repository {name}")


@repo.command("tags")
@click.argument("name")
@json_option
@remote
def repo_tags(api: "Client", name: str, as_json: bool) -> None:
    """List the tags of the repository NAME with their digests and pull counts."""
    items = list(api.tags(name))
    if as_json:
        _json(items)
        return
    _table(["TAG", "DIGEST", "PULLS", "LAST PULLED"],
           ([t.get("name"), t.get("digest"), t.get("pulls", 0), _when(t.get("last_pulled_at"))] for t in items),
           f"no tags in {name}")


# -- credentials ------------------------------------------------------------------------------------------

@click.group()
def credential() -> None:
    """Manage your passwords for docker login.

    A fixed registry password you choose, and temporary passwords (generated, shown once, expiring,
    optionally limited to some repositories and actions). Your account password stays separate.
    """


@credential.command("password")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@remote
def credential_password(api: "Client", password_stdin: bool) -> None:
    """Set your fixed registry password (for docker login; your account password stays as it is)."""
    if password_stdin:
        new = sys.stdin.readline().rstrip("\r\n")
    else:
        new = click.prompt("New registry password", hide_input=True, confirmation_prompt=True, err=True)
    if not new:
        raise click.ClickException("the password is empty")
    api.set_registry_password(new)
    user = api.username or "USER"
    click.echo(f"registry password of {user} set; log in with:")
    click.echo(f"  {_login_line(user, api.registry_host)}")


@credential.command("temp")
@click.option("--ttl", type=Duration(), help="Lifetime: seconds, or 30m, 12h, 7d [default: the server's, 1 hour].")
@click.option("--repository", "-r", "repositories", multiple=True, metavar="PATTERN",
              help="Only these repositories (name or pattern like team/*); repeat for more [default: all of yours].")
@click.option("--action", "-a", "actions", multiple=True, type=click.Choice(ACTIONS),
              help="Only these actions; repeat for more [default: all you may do].")
@click.option("--description", help="What it is for (shown in `credential list`).")
@json_option
@remote
def credential_temp(api: "Client", ttl: int | None, repositories: tuple[str, ...], actions: tuple[str, ...],
                    description: str | None, as_json: bool) -> None:
    """Create a temporary password, shown only this once."""
    t = api.create_temp_password(ttl_seconds=ttl, description=description, repositories=list(repositories),
                                 actions=list(actions)) or {}
    if as_json:
        _json(t)
        return
    user = t.get("username") or api.username or "USER"
    scope = []
    if t.get("repositories") or repositories:
        scope.append("repositories " + ", ".join(t.get("repositories") or repositories))
    if t.get("actions") or actions:
        scope.append("actions " + ", ".join(t.get("actions") or actions))
    click.echo(f"temporary password {t.get('id', '')} for {user}, expires {_when(t.get('expires_at'))}"
               + (f" ({'; '.join(scope)})" if scope else ""))
    click.echo("")
    click.echo(f"  {t.get('password')}")
    click.echo("")
    click.echo("It is shown only this once. Log in with it (paste it, then Enter and Ctrl-D):")
    click.echo(f"  {_login_line(user, api.registry_host)}")


def _temp_status(t: dict[str, Any]) -> str:
    if t.get("revoked_at"):
        return "revoked"
    if _past(t.get("expires_at")):
        return "expired"
    return "active"


@credential.command("list")
@json_option
@remote
def credential_list(api: "Client", as_json: bool) -> None:
    """List your temporary passwords (the passwords themselves are never shown again)."""
    items = list(api.temp_passwords())
    if as_json:
        _json(items)
        return
    _table(["ID", "STATUS", "EXPIRES", "REPOSITORIES", "ACTIONS", "LAST USED", "DESCRIPTION"],
           ([t.get("id"), _temp_status(dict(t)), _when(t.get("expires_at")), t.get("repositories") or "all",
             t.get("actions") or "all", _when(t.get("last_used_at")), _clip(_text(t.get("description")), 40)]
            for t in items), "no temporary passwords")


@credential.command("revoke")
@click.argument("id")
@remote
def credential_revoke(api: "Client", id: str) -> None:
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


def _robot_name(ns: str, name: str, r: dict[str, Any] | None = None) -> str:
    return str((r or {}).get("username") or f"robot${ns}+{name}")


def _permissions(perms: Any) -> str:
    if not perms:
        return "-"
    return " ".join(f"{p.get('repositories', '*')}:{','.join(p.get('actions', []))}" for p in perms if isinstance(p, dict))


def _robot_status(r: dict[str, Any]) -> str:
    if r.get("disabled"):
        return "disabled"
    if _past(r.get("expires_at")):
        return "expired"
    return "active"


@robot.command("create")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("name")
@click.option("--permission", "-p", "permissions", multiple=True, required=True, type=PermissionType(),
              help="PATTERN:ACTIONS, e.g. 'app-*:pull,push' or '*:pull'; a PATTERN without '/' is relative to the "
                   "namespace, one with '/' is a full name (acme/team/*). ACTIONS: pull, push, delete or *. "
                   "Repeat for more.")
@click.option("--ttl", type=Duration(), help="Expire after this long: seconds, or 30m, 12h, 90d [default: never].")
@click.option("--description", help="What it is for.")
@json_option
@remote
def robot_create(api: "Client", ns: str, name: str, permissions: tuple["Permission", ...], ttl: int | None,
                 description: str | None, as_json: bool) -> None:
    """Create the robot NAME in NAMESPACE; its secret is shown only this once."""
    r = api.create_robot(ns, name, list(permissions), description=description, ttl_seconds=ttl) or {}
    if as_json:
        _json(r)
        return
    username = _robot_name(ns, name, dict(r))
    expiry = _when(r.get("expires_at")) if r.get("expires_at") else "never"
    click.echo(f"created robot {username} ({_permissions(r.get('permissions') or permissions)}; expires {expiry})")
    click.echo("")
    click.echo(f"  username: {username}")
    click.echo(f"  secret:   {r.get('secret')}")
    click.echo("")
    click.echo("The secret is shown only this once. Log in with it (note the quotes around the user name):")
    click.echo(f"  {_login_line(username, api.registry_host)}")


@robot.command("list")
@click.argument("ns", metavar="NAMESPACE")
@json_option
@remote
def robot_list(api: "Client", ns: str, as_json: bool) -> None:
    """List the robots of NAMESPACE."""
    items = list(api.robots(ns))
    if as_json:
        _json(items)
        return
    _table(["USERNAME", "STATUS", "PERMISSIONS", "EXPIRES", "LAST USED", "DESCRIPTION"],
           ([_robot_name(ns, str(r.get("name")), dict(r)), _robot_status(dict(r)), _permissions(r.get("permissions")),
             _when(r.get("expires_at")) if r.get("expires_at") else "never", _when(r.get("last_used_at")),
             _clip(_text(r.get("description")), 40)] for r in items), f"no robots in {ns}")


@robot.command("rotate")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("name")
@json_option
@remote
def robot_rotate(api: "Client", ns: str, name: str, as_json: bool) -> None:
    """Give the robot NAME a new secret (shown once); the old one stops working."""
    r = api.rotate_robot(ns, name) or {}
    if as_json:
        _json(r)
        return
    click.echo(f"new secret of {_robot_name(ns, name, dict(r))} (shown only this once; the old one no longer works):")
    click.echo("")
    click.echo(f"  {r.get('secret')}")


@robot.command("disable")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("name")
@remote
def robot_disable(api: "Client", ns: str, name: str) -> None:
    """Disable the robot NAME: it can no longer log in, pull or push."""
    api.update_robot(ns, name, disabled=True)
    click.echo(f"disabled {_robot_name(ns, name)}")


@robot.command("enable")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("name")
@remote
def robot_enable(api: "Client", ns: str, name: str) -> None:
    """Enable the robot NAME again."""
    api.update_robot(ns, name, disabled=False)
    click.echo(f"enabled {_robot_name(ns, name)}")


@robot.command("delete")
@click.argument("ns", metavar="NAMESPACE")
@click.argument("name")
@remote
def robot_delete(api: "Client", ns: str, name: str) -> None:
    """Delete the robot NAME."""
    api.delete_robot(ns, name)
    click.echo(f"deleted {_robot_name(ns, name)}")


# -- audit and whoami -------------------------------------------------------------------------------------

@click.command()
@click.option("--actor", metavar="NAME", help="Only what this user or robot did.")
@click.option("--action", metavar="ACTION", help="Only these actions (a prefix: 'repository.' matches all of them).")
@click.option("--target", metavar="TARGET", help="Only events on this target (a prefix: a namespace matches its repositories).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@json_option
@remote
def audit(api: "Client", actor: str | None, action: str | None, target: str | None, limit: int, as_json: bool) -> None:
    """Show the audit log, newest first.

    Who did what, to what, when and from where: every management action, push and delete.
    """
    items = list(api.audit(actor=actor, action=action, target=target, limit=limit))
    if as_json:
        _json(items)
        return
    _table(["ID", "AT", "ACTOR", "ACTION", "TARGET", "FROM", "DETAIL"],
           ([e.get("id"), _when(e.get("at")), e.get("actor"), e.get("action"), e.get("target"), e.get("remote"),
             _clip(_text(e.get("detail")), 60)] for e in items), "no audit events")


@click.command()
@json_option
@remote
def whoami(api: "Client", as_json: bool) -> None:
    """Show the account the other commands act as."""
    me = api.me() or {}
    if as_json:
        _json(me)
        return
    roles = me.get("namespaces") or {}
    _fields([("username", me.get("username")), ("kind", me.get("kind", "user")),
             ("administrator", me.get("is_admin", False)), ("read-only", me.get("read_only", False)),
             ("namespaces", " ".join(f"{ns}:{role}" for ns, role in sorted(roles.items())) or None),
             ("registry", api.url)])


@click.command("create-remote")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the new user's password from standard input.")
@json_option
@remote
def user_create_remote(api: "Client", username: str, admin: bool, password_stdin: bool, as_json: bool) -> None:
    """Create a user through the API of a running registry (administrators only).

    `dockyard user add` does the same on this machine's database directly.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for the new user {username}", hide_input=True, confirmation_prompt=True,
                                err=True)
    if not password:
        raise click.ClickException("the password is empty")
    created = api.create_user(username, password, is_admin=admin) or {}
    if as_json:
        _json(created)
        return
    click.echo(f"created user {created.get('username', username)}{' (administrator)' if admin else ''}")


def register(main: click.Group) -> None:
    """Add these commands to the `dockyard` group (and `create-remote` to its `user` group)."""
    for command in (namespace, member, repo, credential, robot, audit, whoami):
        main.add_command(command)
    users = main.commands.get("user")
    if isinstance(users, click.Group):
        users.add_command(user_create_remote)
