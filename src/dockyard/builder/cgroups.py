"""The build's cgroups, where the host lets Dockyard make them: memory and process limits, and a
sure way to find and kill every process of a build (a process that left the build's process
group or session is still in its cgroup). Best effort: without them the limits are rlimits only
and processes are found through the process tree (builder/process.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """controller (or "" for cgroup v2) -> this process's cgroup path."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                found[c] = path
    except OSError:
        pass
    return found


def create(name: str, memory_bytes: int, max_pids: int, cpus: float | None = None) -> list[Path]:
    """Make cgroups named `name` under this process's own, with the limits (`cpus`: CPU time as a
    number of CPUs, None: no limit); [] when not allowed."""
    own = _own_paths()
    made: list[Path] = []
    period = 100_000
    quota = str(max(1000, int(cpus * period))) if cpus else None
    if (ROOT / "cgroup.controllers").exists():  # v2
        base = ROOT / own.get("", "/").lstrip("/")
        limits = {"memory.max": str(memory_bytes), "memory.swap.max": "0", "pids.max": str(max_pids),
                  **({"cpu.max": f"{quota} {period}"} if quota else {})}
        candidates = [(base / name, limits)]
    else:
        candidates = [(ROOT / "memory" / own.get("memory", "/").lstrip("/") / name,
                       {"memory.limit_in_bytes": str(memory_bytes)}),
                      (ROOT / "pids" / own.get("pids", "/").lstrip("/") / name, {"pids.max": str(max_pids)})]
        if quota:
            candidates.append((ROOT / "cpu" / own.get("cpu", "/").lstrip("/") / name,
                               {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": quota}))
    for path, limits in candidates:
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            continue
        made.append(path)
        for key, value in limits.items():
            try:
                (path / key).write_text(value)
            except OSError:
                pass
    return made


def pids(paths: list[Path]) -> set[int]:
    found: set[int] = set()
    for path in paths:
        try:
            found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            pass
    return found


def kill_all(paths: list[Path], seconds: float = 5.0) -> None:
    """SIGKILL every process in the cgroups until none is left (or `seconds` pass)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = pids(paths)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def remove(paths: list[Path]) -> None:
    kill_all(paths)
    for path in paths:
        try:
            path.rmdir()
        except OSError:
            pass


def memory_peak(paths: list[Path]) -> int | None:
    for path in paths:
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((path / name).read_text())
            except (OSError, ValueError):
                continue
    return None
