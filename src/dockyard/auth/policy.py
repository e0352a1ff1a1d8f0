"""Who may do what: the intersection of what was asked and what the principal may do.

- Administrators may do everything, and a push of theirs creates a missing namespace.
- Members of a namespace act by role: owner and developer pull, push and delete; guest pulls.
  A push may create a repository when the namespace allows it (auto_create).
- Everyone, anonymous callers included, may pull a public repository. Nothing else is anonymous.
- A robot acts only in its namespace, as its permissions (repository patterns) say.
- A temporary password narrows its user's rights to its repositories and actions, if it has any.
- `registry:catalog:*` is granted to every caller; the listing is filtered (see AuthService.visible).
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.core.access import ROLE_ACTIONS, RepositoryFacts, matches
from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS, Scope
from dockyard.meta.credentials import Robot, TempPassword
from dockyard.meta.users import User


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a user (possibly through a temporary password) or a robot."""

    user: User | None = None
    robot: Robot | None = None
    temp: TempPassword | None = None
    # Signed in with the account password (not a registry password, temporary password or robot
    # secret): only such principals may change things through the management API.
    account_login: bool = False

    @property
    def name(self) -> str:
        if self.robot is not None:
            return self.robot.username
        return self.user.username if self.user is not None else ""

    @property
    def is_build_credential(self) -> bool:
        """A build's push credential (auth/service.py `_build_login`): a robot with no row."""
        return self.robot is not None and self.robot.id == 0

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin and not self.user.disabled and self.temp is None


def repository_actions(principal: Principal | None, role: str | None, facts: RepositoryFacts) -> set[str]:
    """Everything `principal` may do on the repository described by `facts`."""
    allowed: set[str] = set()
    if facts.public and facts.exists:
        allowed.add("pull")
    if principal is None:
        return allowed
    if principal.robot is not None:
        robot = principal.robot
        if robot.disabled or robot.namespace != facts.namespace:
            return allowed
        for perm in robot.permissions:
            pattern = str(perm.get("repositories", "*"))
            full = pattern if "/" in pattern else f"{facts.namespace}/{pattern}"
            if matches(full, facts.name) or matches(pattern, facts.name):
                allowed.update(a for a in perm.get("actions", []) if a in ALL_REPOSITORY_ACTIONS)
        return _creatable(allowed, facts, robot_or_admin=True)
    user = principal.user
    if user is None or user.disabled:
        return allowed
    if user.is_admin:
        allowed.update(ALL_REPOSITORY_ACTIONS)
    elif role is not None:
        allowed.update(ROLE_ACTIONS.get(role, ()))
        allowed = _creatable(allowed, facts, robot_or_admin=False)
    temp = principal.temp
    if temp is not None:
        if temp.actions is not None:
            allowed &= set(temp.actions)
        if temp.repositories is not None and not any(matches(p, facts.name) for p in temp.repositories):
            allowed = {"pull"} & allowed if facts.public and facts.exists else set()
    return allowed


def _creatable(allowed: set[str], facts: RepositoryFacts, robot_or_admin: bool) -> set[str]:
    # A push to a repository that does not exist yet creates it, if the namespace allows that.
    if not facts.exists and "push" in allowed and not (facts.namespace_exists and facts.auto_create):
        allowed = allowed - {"push"}
    return allowed


def grant_actions(scope: Scope, allowed: frozenset[str] | set[str]) -> tuple[str, ...]:
    """The asked-for actions that are allowed, in the order asked ('*' asks for all)."""
    wanted = ALL_REPOSITORY_ACTIONS if "*" in scope.actions else scope.actions
    return tuple(a for a in wanted if a in allowed)
