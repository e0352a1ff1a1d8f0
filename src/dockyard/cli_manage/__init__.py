"""`dockyard` subcommands that drive the management API (/api/v1) of a running registry over HTTP:
namespace, member, repo, credential, robot, audit, whoami, jobs, scan, webhook, build and user create-remote.

Every command takes --url (DOCKYARD_URL, default http://127.0.0.1:5000) and --user
(DOCKYARD_USER); the account password comes from DOCKYARD_PASSWORD, or is asked for when standard
input is a terminal. Output is a table for people, or the API's JSON with --json.
The reference with examples is docs/cli.md.

    common.py        the connection (`remote`: --json, --url, --user), shared options, output
    params.py        argument types: durations and robot permissions
    namespaces.py    namespace, member
    repositories.py  repo
    credentials.py   credential, robot
    audit.py         audit, whoami, user create-remote
    jobs.py          jobs list|show|cancel
    scans.py         scan (an image's vulnerabilities; exit codes for CI)
    webhooks.py      webhook list|create|deliveries|redeliver
    builds.py        build configure|config|start|list|logs|cancel
"""

from __future__ import annotations

import click

from dockyard.cli_manage import audit, builds, credentials, jobs, namespaces, repositories, scans, webhooks

COMMANDS: tuple[click.Command, ...] = (namespaces.namespace, namespaces.member, repositories.repo,
                                       credentials.credential, credentials.robot, audit.audit, audit.whoami,
                                       jobs.jobs, scans.scan, webhooks.webhook, builds.build)


def register(main: click.Group) -> None:
    """Add these commands to the `dockyard` group (and `create-remote` to its `user` group)."""
    for command in COMMANDS:
        main.add_command(command)
    users = main.commands.get("user")
    if isinstance(users, click.Group):
        users.add_command(audit.user_create_remote)
