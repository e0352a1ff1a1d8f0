"""Argument types of the remote commands: durations (--ttl) and robot permissions (--permission)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dockyard.client import Permission

ACTIONS = ("pull", "push", "delete")

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

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Permission:
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
