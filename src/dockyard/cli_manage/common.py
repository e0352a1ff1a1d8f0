"""What every remote command shares: the connection (--url, --user, the password, API errors), the
options they repeat, and the output (tables for people, the API's JSON with --json)."""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from dockyard.client import Client

DEFAULT_URL = "http://127.0.0.1:5000"  # dockyard.client.DEFAULT_URL (not imported: httpx loads lazily)

T = TypeVar("T")
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


# -- connection -----------------------------------------------------------------------------------------

def _interactive() -> bool:
    """Whether we may ask for missing credentials (tests replace this)."""
    return sys.stdin.isatty()


@contextmanager
def session(url: str, user: str | None) -> Iterator[Client]:
    """A client logged in as `user` (asking for what is missing on a terminal); API errors become click errors."""
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


_json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
_url_option = click.option("--url", envvar="DOCKYARD_URL", default=DEFAULT_URL, show_default=True, metavar="URL",
                           help="The registry's base URL. Environment: DOCKYARD_URL.")
_user_option = click.option("--user", "-u", envvar="DOCKYARD_USER", metavar="NAME",
                            help="Account to act as (password: DOCKYARD_PASSWORD, or asked for). "
                                 "Environment: DOCKYARD_USER.")


def remote(*, json: bool) -> Decorator:
    """The options of every remote command, listed after its own: --json (when `json`), --url and --user.

    Put it last (nearest the function): the function gets a connected `api: Client` first, then its own
    parameters, `as_json` among them when `json`.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(url: str, user: str | None, **kwargs: Any) -> Any:
            with session(url, user) as api:
                return fn(api, **kwargs)

        # click lists the option applied last first, so they go on in reverse: --user, --url, --json
        command: Callable[..., Any] = _url_option(_user_option(wrapper))
        return _json_option(command) if json else command

    return decorate


namespace_argument = click.argument("ns", metavar="NAMESPACE")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def changes(**fields: Any) -> dict[str, Any]:
    """The options of an update command that were given; a usage error (exit code 2) when none was."""
    changed = {k: v for k, v in fields.items() if v is not None}
    if not changed:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    return changed


def new_password(from_stdin: bool, prompt: str) -> str:
    """A new password: the first line of standard input, or typed twice at a hidden prompt. Never empty."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise click.ClickException("the password is empty")
    return str(password)


# -- output ---------------------------------------------------------------------------------------------

def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _instant(value: Any) -> datetime | None:
    """An API timestamp as an aware datetime (UTC when it has no offset); None for none or not a timestamp."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def when(value: Any) -> str:
    """An API timestamp as `2025-01-31 14:05:09Z` (UTC); '-' for none."""
    if not value:
        return "-"
    at = _instant(value)
    return str(value) if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def is_past(value: Any) -> bool:
    at = _instant(value)
    return at is not None and at <= datetime.now(UTC)


def cell(value: Any) -> str:
    """A value as one table cell or field: '-' for none, yes/no, lists joined with commas, one line."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value).replace("\n", " ")


def clip(value: Any, width: int) -> str:
    """`cell(value)` cut to `width` characters, with an ellipsis when cut."""
    text = cell(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> None:
    cells = [[cell(c) for c in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def print_list(items: Iterable[T], as_json: bool, headers: Sequence[str], row: Callable[[T], Sequence[Any]],
               empty: str) -> None:
    """What a list command prints: the items as JSON, or a table with a `row(item)` each (`empty` if none)."""
    items = list(items)
    if as_json:
        print_json(items)
        return
    print_table(headers, (row(item) for item in items), empty)


def print_item(item: T, as_json: bool, render: Callable[[T], None]) -> None:
    """What a command that shows one thing prints: its JSON, or `render(item)` for people."""
    if as_json:
        print_json(item)
    else:
        render(item)


def print_updated(item: T, as_json: bool, done: str, render: Callable[[T], None]) -> None:
    """What an update command prints: the changed thing's JSON, or `done` and `render(item)` (when the API sent it)."""
    if as_json:
        print_json(item)
        return
    click.echo(done)
    if item:
        render(item)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs) + 1
    for key, value in pairs:
        click.echo(f"{key + ':':<{width}} {cell(value)}")


def login_line(username: str, host: str) -> str:
    return f"docker login -u {shlex.quote(username)} --password-stdin {host}"
