"""`dockyard build configure|config|start|list|logs|cancel`: automated builds of a repository."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from dockyard.cli_manage.common import clip, print_json, print_list, remote, when

if TYPE_CHECKING:
    from dockyard.client import Client

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket", "git")
RUNNING = ("queued", "running")


@click.group()
def build() -> None:
    """Automated builds: a repository's code source and rules, its builds and their logs."""


def _rule(text: str) -> dict[str, Any]:
    """KIND:REGEX=TAG[,TAG…], e.g. branch:main=latest or tag:release-v(.*)=${1}."""
    kind, sep, rest = text.partition(":")
    match, eq, tags = rest.rpartition("=")
    if not sep or not eq or kind not in ("branch", "tag") or not match or not tags:
        raise click.BadParameter(f"{text!r}: KIND:REGEX=TAG[,TAG…] with KIND branch or tag, e.g. tag:release-v(.*)=${{1}}",
                                 param_hint="--rule")
    return {"kind": kind, "match": match, "tags": [t for t in tags.split(",") if t]}


@build.command("configure")
@click.argument("repository")
@click.option("--file", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The whole configuration, JSON or YAML (as PUT /api/v1/repositories/{name}/build-config takes).")
@click.option("--provider", type=click.Choice(PROVIDERS), help="Who sends the webhooks (default: git).")
@click.option("--source", "source_url", help="Clone URL.")  # not `url`: that is --url (remote)
@click.option("--token-env", metavar="VAR", help="Read the source's access token from this environment variable "
              "(never give a token on the command line).")
@click.option("--rule", "rules", multiple=True, metavar="KIND:REGEX=TAGS",
              help="A build rule, e.g. branch:main=latest or 'tag:release-v(.*)=${1}'; repeat for more.")
@click.option("--dockerfile", default="Dockerfile", show_default=True, help="Dockerfile path, for every --rule.")
@click.option("--context", default=".", show_default=True, help="Build context directory, for every --rule.")
@click.option("--platform", "platforms", multiple=True, help="A target platform, for every --rule; repeat for more.")
@click.option("--poll", type=int, metavar="SECONDS", help="Poll the source every so many seconds.")
@click.option("--manual-only", is_flag=True, help="No automatic builds (webhooks and polling start nothing).")
@click.option("--rotate-secret", is_flag=True, help="Make a new provider webhook secret.")
@remote(json=True)
def build_configure(api: Client, repository: str, config_file: Path | None, provider: str | None, source_url: str | None,
                    token_env: str | None, rules: tuple[str, ...], dockerfile: str, context: str,
                    platforms: tuple[str, ...], poll: int | None, manual_only: bool, rotate_secret: bool,
                    as_json: bool) -> None:
    """Set a repository's code source and build rules; prints the webhook URL and secret to give
    the provider (the secret only now)."""
    if config_file is not None:
        body = yaml.safe_load(config_file.read_text())
        if not isinstance(body, dict):
            raise click.BadParameter("the file must hold one object", param_hint="--file")
    else:
        if not source_url or not rules:
            raise click.UsageError("give --source and at least one --rule (or --file)")
        body = {"source": {"provider": provider or "git", "url": source_url},
                "rules": [{**_rule(r), "dockerfile": dockerfile, "context": context, "platforms": list(platforms)}
                          for r in rules],
                "auto_build": not manual_only, "poll_interval_seconds": poll}
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise click.UsageError(f"the environment variable {token_env} is empty")
        body.setdefault("source", {})["token"] = token
    if rotate_secret:
        body["rotate_webhook_secret"] = True
    config = api.put_build_config(repository, body)
    if as_json:
        print_json(config)
        return
    click.echo(f"builds of {repository} configured from {config['source']['url']}")
    click.echo(f"provider webhook URL: {config['webhook_url']}")
    click.echo(f"provider webhook secret (shown only now): {config['webhook_secret']}")


@build.command("config")
@click.argument("repository")
@remote(json=False)
def build_config(api: Client, repository: str) -> None:
    """Show a repository's build configuration (secrets masked), as JSON."""
    print_json(api.build_config(repository))


@build.command("start")
@click.argument("repository")
@click.argument("ref")
@click.option("--tag", "tags", multiple=True, help="Image tag instead of the rule's; repeat for more.")
@click.option("--follow", "-f", is_flag=True, help="Print the log as it comes, until the build ends.")
@remote(json=True)
def build_start(api: Client, repository: str, ref: str, tags: tuple[str, ...], follow: bool, as_json: bool) -> None:
    """Build now: REF is a branch (refs/heads/main or main), a tag (refs/tags/v1) or a commit id."""
    if not ref.startswith("refs/") and not (7 <= len(ref) <= 64 and all(c in "0123456789abcdef" for c in ref)):
        ref = f"refs/heads/{ref}"
    started = api.start_build(repository, ref, list(tags))
    if as_json and not follow:
        print_json(started)
        return
    for b in started["builds"]:
        click.echo(f"build {b['id']} queued: {b['ref']} -> {', '.join(b['tags'])}", err=follow)
    if follow:
        sys.exit(_follow(api, int(started["id"])))


@build.command("list")
@click.argument("repository")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@remote(json=True)
def build_list(api: Client, repository: str, limit: int, as_json: bool) -> None:
    """A repository's builds, newest first."""
    print_list(api.builds(repository, limit), as_json, ["ID", "STATUS", "REF", "REVISION", "TAGS", "DIGEST", "CREATED", "ERROR"],
               lambda b: [b["id"], b["status"], b["ref"], (b.get("revision") or "")[:12], ",".join(b["tags"]),
                          clip(b.get("digest"), 23), when(b.get("created_at")), clip(b.get("error"), 50)],
               f"no builds of {repository}")


@build.command("logs")
@click.argument("build_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the build ends; exit status 1 if it failed.")
@remote(json=False)
def build_logs(api: Client, build_id: int, follow: bool) -> None:
    """A build's log."""
    if follow:
        sys.exit(_follow(api, build_id))
    text, _, _ = api.build_log(build_id)
    click.echo(text, nl=False)


@build.command("cancel")
@click.argument("build_id", type=int)
@remote(json=True)
def build_cancel(api: Client, build_id: int, as_json: bool) -> None:
    """Cancel a queued or running build."""
    found = api.cancel_build(build_id)
    if as_json:
        print_json(found)
        return
    click.echo(f"build {build_id}: {found['status']}")


def _follow(api: Client, build_id: int, poll: float = 1.0) -> int:
    """Print the log as it grows until the build ends; 0 when it succeeded, else 1."""
    offset = 0
    while True:
        text, size, status = api.build_log(build_id, offset)
        if text:
            click.echo(text, nl=False)
            offset += len(text)
        if status not in RUNNING and offset >= size:
            click.echo(f"build {build_id} {status}", err=True)
            return 0 if status == "succeeded" else 1
        time.sleep(poll if offset >= size else 0)

