"""Access-control vocabulary and the pure rules: roles, visibility, repository patterns, and which
namespace a repository belongs to. No I/O: auth/policy.py combines these with stored facts."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

ROLES = ("owner", "developer", "guest")
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "owner": ("pull", "push", "delete"),
    "developer": ("pull", "push", "delete"),
    "guest": ("pull",),
}
DEFAULT_NAMESPACE = "library"  # of one-component names, as on Docker Hub


def namespace_of(repository: str) -> str:
    """"team/app" -> "team"; "busybox" -> "library"."""
    head, sep, _ = repository.partition("/")
    return head if sep else DEFAULT_NAMESPACE


def matches(pattern: str, repository: str) -> bool:
    """Glob match on the whole repository name ('*' also crosses '/'), e.g. "team/app-*"."""
    return fnmatch.fnmatchcase(repository, pattern)


def is_public(visibility: str | None, namespace_public: bool) -> bool:
    """The one visibility rule: a repository's own setting ("public" or "private") wins; without one
    (None) it inherits its namespace's default (`namespace_public`, False when there is no namespace)."""
    return visibility == "public" if visibility else namespace_public


@dataclass(frozen=True, slots=True)
class RepositoryFacts:
    """What the policy needs to know about a repository (it may not exist yet)."""

    name: str
    namespace: str
    namespace_exists: bool
    exists: bool
    public: bool  # effective visibility: the repository's own, else the namespace default
    auto_create: bool  # may a push create it (when it does not exist)?
