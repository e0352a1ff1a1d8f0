"""Docker token scopes: `repository:NAME:pull,push`, `registry:catalog:*`."""

from __future__ import annotations

from dataclasses import dataclass

ALL_REPOSITORY_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def as_claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(text: str) -> Scope | None:
    """Parse one scope string; None when it is malformed (malformed scopes are ignored, as Docker Hub does).

    The name may itself contain ':' (a registry host with a port), so the type is the part before
    the first ':' and the actions the part after the last one.
    """
    first = text.find(":")
    last = text.rfind(":")
    if first <= 0 or last == first:
        return None
    type_, name, actions = text[:first], text[first + 1 : last], text[last + 1 :]
    if not name:
        return None
    acts = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    return Scope(type_, name, acts)


# Real clients ask for a handful of scopes (a push that mounts from other repositories, a few
# more): the limits keep an anonymous request from costing thousands of look-ups.
MAX_SCOPES = 100
MAX_SCOPE_LENGTH = 512  # type, a repository name (at most 255 in practice), actions


def scope_limits_error(values: list[str]) -> str | None:
    """Why the `scope` parameters of a token request are refused (too many, or one too long), or None."""
    count = 0
    for value in values:
        for part in value.split():
            count += 1
            if len(part) > MAX_SCOPE_LENGTH:
                return f"a scope is longer than {MAX_SCOPE_LENGTH} characters"
            if count > MAX_SCOPES:
                return f"more than {MAX_SCOPES} scopes in one request"
    return None


def parse_scopes(values: list[str]) -> list[Scope]:
    """Parse the `scope` parameters of a token request (each may hold several, space-separated;
    at most MAX_SCOPES are read: check scope_limits_error first to refuse more)."""
    out: list[Scope] = []
    for value in values:
        for part in value.split():
            if len(out) >= MAX_SCOPES:
                return out
            scope = parse_scope(part)
            if scope is not None:
                out.append(scope)
    return out
