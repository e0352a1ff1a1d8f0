"""The management use-cases: who may change what, the change itself, and its audit record.

Every method takes the acting `Actor` first and raises the errors of `management.errors`
(never HTTP ones). Rules:

- Namespaces: any user may create one and becomes its owner; owners and administrators change,
  delete and manage members and robots; members (and everyone, for a public namespace) read it.
- Repositories: owners, developers and administrators create and edit them; owners and
  administrators delete them; anyone who may pull one reads it.
- Webhooks: owners and administrators only, reading included.
- Builds: owners and administrators configure them; those who may push start and cancel them;
  members read their history and logs (management/builds.py).
- Search (`docker search`): anyone, over the repositories they may pull; stars: signed-in users.
- Robots and temporary-password logins may only read (`Actor.read_only`).
- After a change of roles, visibility, credentials or users the cached access decisions are
  dropped (`AuthService.forget_access`), so the next token request sees the change.

Audit targets: a namespace `ns`; a repository `ns/app`; a robot `robot$ns+name`; a user or
their credentials `user:NAME`. Members are recorded on the namespace, with the user in `detail`.
"""

from __future__ import annotations

from dockyard.management.base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_PASSWORD,
    MIN_PASSWORD,
    Actor,
    NamespaceInfo,
    NewRobotSecret,
    NewTempPassword,
    Page,
    TagInfo,
    WhoAmI,
    limit_of,
)
from dockyard.management.builds import BuildUseCases
from dockyard.management.credentials import MAX_PATTERN, MAX_TTL, MIN_TTL, ROBOT_NAME_RE, CredentialUseCases
from dockyard.management.namespaces import RESERVED_NAMESPACES, NamespaceUseCases
from dockyard.management.repositories import RepositoryUseCases
from dockyard.management.search import SearchUseCases
from dockyard.management.users import USERNAME_RE, UserUseCases
from dockyard.management.webhooks import WebhookUseCases

__all__ = [
    "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_PASSWORD", "MAX_PATTERN", "MAX_TTL", "MIN_PASSWORD", "MIN_TTL",
    "RESERVED_NAMESPACES", "ROBOT_NAME_RE", "USERNAME_RE",
    "Actor", "ManagementService", "NamespaceInfo", "NewRobotSecret", "NewTempPassword", "Page", "TagInfo", "WhoAmI",
    "limit_of",
]


class ManagementService(NamespaceUseCases, RepositoryUseCases, CredentialUseCases, UserUseCases, WebhookUseCases,
                        BuildUseCases, SearchUseCases):
    """All the management use-cases over one set of stores (the constructor is `_ServiceBase`'s);
    each resource's methods live in its own module: namespaces (and members), repositories (and
    tags), credentials (registry password, temporary passwords, robots), users (and whoami, audit),
    webhooks (and their deliveries), builds (configuration, builds, logs)."""
