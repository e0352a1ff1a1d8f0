"""Run one build child (builder/runner.py) and watch it: its output as it comes, its time limit,
cancellation, and afterwards, that no process of it is left.

The child starts from a fresh interpreter (fork + exec: nothing of this process's memory, so no
database URL or storage key), with an environment made here from scratch, in a session and
process group of its own, in the build's cgroups when the host allows them. Stopping it kills
the cgroups' processes, the process group, and every descendant found in /proc.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.builder import cgroups


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # succeeded | failed | cancelled | stopped (the worker is stopping: hand the build back)
    digest: str | None = None
    revision: str | None = None
    error: str | None = None


def child_environment(home: Path, tmp: Path) -> dict[str, str]:
    """PATH and locale from here, HOME and TMPDIR in the build's directory; nothing else."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
           "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(tmp)}
    if "PYTHONPATH" in os.environ:  # a source checkout run without installing
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, from /proc (children before their own children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen[Any], groups: list[Path]) -> None:
    for _ in range(20):
        targets = descendants(proc.pid)
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if not targets:
            break
        time.sleep(0.05)
    cgroups.kill_all(groups)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run_child(spec: dict[str, Any], workdir: Path, *, deadline: float, should_stop: Callable[[], str | None],
              on_output: Callable[[str], None], on_revision: Callable[[str], None],
              memory_bytes: int, max_pids: int = 4096, max_workspace_bytes: int | None = None,
              cpus: float | None = None, storage: Path | None = None, min_free_bytes: int = 0) -> Outcome:
    """Run the build; `should_stop()` returns "cancelled" or "stopped" when it must end early.
    `on_output` gets the log as it comes (from a reader thread), in pieces of whole lines."""
    home, tmp = workdir / "home", workdir / "tmp"
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    groups = cgroups.create(f"dockyard-build-{spec['build_id']}-{os.getpid()}", memory_bytes, max_pids, cpus)
    spec = {**spec, "workdir": str(workdir), "cgroups": [str(g) for g in groups]}
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.builder.runner", "--result-fd", str(write_end)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=child_environment(home, tmp), cwd=workdir, pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)
    results: list[dict[str, Any]] = []

    def read_results() -> None:
        with os.fdopen(read_end) as pipe:
            for line in pipe:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                results.append(item)
                if "revision" in item and "digest" not in item and "error" not in item:
                    on_revision(str(item["revision"]))

    def read_output() -> None:
        assert proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may straddle two reads
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            on_output(decoder.decode(chunk))
        on_output(decoder.decode(b"", final=True))

    readers = [threading.Thread(target=read_results, daemon=True), threading.Thread(target=read_output, daemon=True)]
    for t in readers:
        t.start()
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(spec).encode())
        proc.stdin.close()
    except OSError:
        pass
    stop: str | None = None
    last_size_check = time.monotonic()
    try:
        while True:
            try:
                proc.wait(timeout=0.2)  # returns the moment the child ends
                break
            except subprocess.TimeoutExpired:
                pass
            stop = should_stop()
            if stop is None and time.monotonic() > deadline:
                stop = "timeout"
            if stop is None and time.monotonic() - last_size_check > 5:
                last_size_check = time.monotonic()
                if max_workspace_bytes and disk_usage(workdir) > max_workspace_bytes:
                    stop = "disk"
                elif storage is not None and min_free_bytes and shutil.disk_usage(storage).free < min_free_bytes:
                    stop = "full"  # image layers go to the layer cache's file system
            if stop is not None:
                break
    finally:
        kill_tree(proc, groups)  # also after a normal end: whatever it left running goes
        for t in readers:
            t.join(timeout=5)
        cgroups.remove(groups)
    final = next((r for r in reversed(results) if "digest" in r or "error" in r), None)
    revision = next((str(r["revision"]) for r in reversed(results) if r.get("revision")), None)
    if stop == "timeout":
        return Outcome("failed", revision=revision, error="the build ran past its time limit and was stopped")
    if stop == "disk":
        return Outcome("failed", revision=revision, error="the build's work directory grew past builds.max_workspace_gib")
    if stop == "full":
        return Outcome("failed", revision=revision, error="the disk of the layer cache has less than builds.min_free_gib "
                       "free: the build was stopped")
    if stop in ("cancelled", "stopped"):
        return Outcome(stop, revision=revision, error="the build was cancelled" if stop == "cancelled" else None)
    if final is not None and final.get("digest"):
        return Outcome("succeeded", digest=str(final["digest"]), revision=revision)
    error = str(final["error"]) if final and final.get("error") else f"the build process ended with status {proc.returncode}"
    return Outcome("failed", revision=revision, error=error)


def disk_usage(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
