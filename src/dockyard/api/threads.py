"""Blocking work (database, file system) from async handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in the default thread pool."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
