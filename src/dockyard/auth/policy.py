"""Who may do what. Until namespaces and roles arrive, every active user may pull, push and
delete in every repository and list the catalog; anonymous callers may do nothing."""

from __future__ import annotations

from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS, Scope
from dockyard.meta.users import User


def allowed_actions(user: User | None, scope: Scope) -> tuple[str, ...]:
    if user is None or user.disabled:
        return ()
    if scope.type == "repository":
        wanted = ALL_REPOSITORY_ACTIONS if "*" in scope.actions else scope.actions
        return tuple(a for a in wanted if a in ALL_REPOSITORY_ACTIONS)
    if scope.type == "registry" and scope.name == "catalog":
        return ("*",) if "*" in scope.actions else ()
    return ()


def grant(user: User | None, scopes: list[Scope]) -> list[Scope]:
    """The intersection of what was asked and what the user may do (empty scopes dropped)."""
    out: list[Scope] = []
    for scope in scopes:
        actions = allowed_actions(user, scope)
        if actions:
            out.append(Scope(scope.type, scope.name, actions))
    return out
