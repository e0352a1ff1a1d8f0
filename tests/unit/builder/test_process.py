"""builder/process.py: the build child's environment (none of the registry's secrets), finding and
killing a whole process tree, and `run_child` with the real runner (builder/runner.py), the real git
fetching a local repository, and small shell scripts standing in for buildah: the revision and
digest come back through the result pipe, a failing step fails the build with its reason, and a
cancel or the time limit kills every process of the build."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.builder.process import child_environment, descendants, kill_tree, run_child
from dockyard.outbound import git as outbound_git
from dockyard.outbound.guard import AddressPolicy
from tests.git_server import git

DIGEST = "sha256:" + "0" * 64


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes(command: str) -> list[int]:
    """Running processes whose command line is exactly `command`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(
                    errors="replace")
            except OSError:
                continue
            if cmdline == command and alive(int(entry)):
                found.append(int(entry))
    return found


def wait_until(condition: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


# --- the environment ---

def test_the_child_environment_carries_nothing_of_the_registrys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"DOCKYARD_DATABASE__URL": "postgresql://u:secret@db/dockyard", "DOCKYARD_ADMIN_PASSWORD": "pw",
                        "DOCKYARD_STORAGE__S3__SECRET_KEY": "s3", "DATABASE_URL": "postgresql://x", "PGPASSWORD": "pg",
                        "AWS_SECRET_ACCESS_KEY": "aws", "AWS_ACCESS_KEY_ID": "id", "SSH_AUTH_SOCK": "/tmp/agent",
                        "HOME": "/root", "TMPDIR": "/tmp"}.items():
        monkeypatch.setenv(name, value)
    env = child_environment(tmp_path / "home", tmp_path / "tmp")
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONPATH"}
    assert env["HOME"] == str(tmp_path / "home") and env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["PATH"] == os.environ["PATH"]
    assert not any(secret in value for value in env.values() for secret in ("secret", "pw", "s3", "aws", "pg"))


def test_the_child_environment_without_path_gets_a_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PATH")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    env = child_environment(tmp_path, tmp_path)
    assert "/usr/bin" in env["PATH"].split(":") and set(env) == {"PATH", "LANG", "HOME", "TMPDIR"}


# --- process trees ---

def test_descendants_and_kill_tree_take_the_whole_tree() -> None:
    # a background child, a grandchild in a session of its own (out of the process group), a foreground child
    n = f"{os.getpid() % 1000}{int(time.time() * 1000) % 1000:03d}"
    markers = [f"sleep 30.{n}1", f"sleep 30.{n}2", f"sleep 30.{n}3"]
    proc = subprocess.Popen(["sh", "-c", f"{markers[0]} & setsid sh -c '{markers[1]} & wait' & {markers[2]}; wait"],
                            start_new_session=True)
    try:
        assert wait_until(lambda: all(processes(m) for m in markers)), "the tree did not start"
        tree = descendants(proc.pid)
        started = [pid for m in markers for pid in processes(m)]
        assert len(started) == 3 and set(started) <= set(tree)
        assert len(tree) == 4  # and the setsid shell
        assert proc.pid not in tree and os.getpid() not in tree
        kill_tree(proc, [])
        assert proc.returncode is not None
        assert wait_until(lambda: not any(alive(p) for p in tree), 5), [p for p in tree if alive(p)]
    finally:
        for pid in [pid for m in markers for pid in processes(m)]:
            os.kill(pid, 9)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_descendants_of_a_process_without_children() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert descendants(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


# --- run_child with the real runner ---

FAKE_BUILDAH = """#!/bin/sh
echo "fake-buildah $*"
prev=""
for arg in "$@"; do
  if [ "$prev" = "--digestfile" ]; then echo "sha256:$(printf '%064d' 0)" > "$arg"; fi
  prev="$arg"
done
"""

SLOW_BUILDAH = """#!/bin/sh
echo "slow-buildah $*"
case "$*" in *" bud "*) sleep 61.25 & echo "the build runs"; sleep 61.5 ;; esac
"""


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, str]:
    """A local repository with a commit on main: (its file:// URL, the commit)."""
    work = tmp_path / "source"
    git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    (work / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (work / "hello.txt").write_text("hello\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    return f"file://{work}", git("rev-parse", "HEAD", cwd=work)


def spec(tmp_path: Path, url: str, revision: str | None, buildah: str) -> dict[str, Any]:
    target = outbound_git.check(url, AddressPolicy(), lambda host, port: [], allow_file=True)
    program = tmp_path / "buildah"
    program.write_text(buildah)
    program.chmod(0o755)
    return {
        "build_id": 7, "ref": "refs/heads/main", "revision": revision, "ref_is_commit": False,
        "source": {"url": target.url, "display": target.display, "provider": "git", "host": target.host,
                   "config": target.config, "token": None, "ssh_key": None},
        "build": {"dockerfile": "Dockerfile", "context": ".", "build_args": {"A": "1"}, "platforms": [],
                  "isolation": "chroot", "labels": {"org.opencontainers.image.source": target.display}},
        "no_emulation": [],
        "push": {"registry": "127.0.0.1:1", "tls_verify": False, "repository": "team/app", "tags": ["latest", "v1"],
                 "username": "dockyard-build", "password": "not-a-real-credential"},
        "buildah": str(program), "storage": {"root": str(tmp_path / "storage"), "runroot": str(tmp_path / "run")},
        "limits": {"file_bytes": 1 << 30},
    }


class Watch:
    def __init__(self, stop_when: str | None = None, stop_with: str = "cancelled") -> None:
        self.output: list[str] = []
        self.revisions: list[str] = []
        self.stop_when = stop_when
        self.stop_with = stop_with
        self.seen: list[int] = []  # the build's sleeps, when it was told to stop

    @property
    def log(self) -> str:
        return "".join(self.output)

    def should_stop(self) -> str | None:
        if self.stop_when and self.stop_when in self.log:
            self.seen = processes("sleep 61.25") + processes("sleep 61.5")
            return self.stop_with
        return None

    def run(self, build: dict[str, Any], workdir: Path, seconds: float = 60.0) -> Any:
        return run_child(build, workdir, deadline=time.monotonic() + seconds, should_stop=self.should_stop,
                         on_output=self.output.append, on_revision=self.revisions.append, memory_bytes=512 << 20)


def test_a_build_fetches_builds_and_pushes_every_tag(tmp_path: Path, source: tuple[str, str]) -> None:
    url, commit = source
    watch = Watch()
    outcome = watch.run(spec(tmp_path, url, commit, FAKE_BUILDAH), tmp_path / "work")
    assert (outcome.status, outcome.digest, outcome.revision, outcome.error) == ("succeeded", DIGEST, commit, None), \
        watch.log
    assert watch.revisions == [commit]
    log = watch.log
    assert f"fetching refs/heads/main from {url}" in log and f"building {commit[:12]}" in log
    assert " bud --isolation chroot --layers -f " in log and f"org.opencontainers.image.revision={commit}" in log
    assert "--build-arg A=1" in log and "-t localhost/dockyard-build-7" in log
    assert sum(line.startswith("fake-buildah ") and " push --authfile " in line for line in log.splitlines()) == 2
    assert f"pushed 127.0.0.1:1/team/app:latest {DIGEST}" in log and f"pushed 127.0.0.1:1/team/app:v1 {DIGEST}" in log
    assert "not-a-real-credential" not in log  # the push credential is in a file, not on the command line


def test_a_failing_step_fails_the_build_with_its_reason(tmp_path: Path, source: tuple[str, str]) -> None:
    url, commit = source
    watch = Watch()
    outcome = watch.run(spec(tmp_path, url, commit, "#!/bin/sh\necho 'STEP 1/2: nope' >&2\nexit 3\n"), tmp_path / "w")
    assert outcome.status == "failed" and outcome.digest is None and outcome.revision == commit
    assert outcome.error == "buildah bud failed (exit status 3)"
    assert "STEP 1/2: nope" in watch.log and "error: buildah bud failed" in watch.log


def test_a_ref_that_is_not_there_fails_in_git(tmp_path: Path, source: tuple[str, str]) -> None:
    url, _ = source
    build = spec(tmp_path, url, None, FAKE_BUILDAH)
    build["ref"] = "refs/heads/nope"
    watch = Watch()
    outcome = watch.run(build, tmp_path / "w")
    assert outcome.status == "failed" and outcome.error == "git fetch failed (exit status 128)", watch.log
    assert watch.revisions == [] and "fake-buildah" not in watch.log


@pytest.mark.parametrize(("stop_with", "status", "error"), [
    ("cancelled", "cancelled", "the build was cancelled"),
    ("stopped", "stopped", None),
])
def test_a_cancel_kills_every_process_of_the_build(tmp_path: Path, source: tuple[str, str], stop_with: str,
                                                   status: str, error: str | None) -> None:
    url, commit = source
    watch = Watch(stop_when="the build runs", stop_with=stop_with)
    started = time.monotonic()
    outcome = watch.run(spec(tmp_path, url, commit, SLOW_BUILDAH), tmp_path / "w")
    assert (outcome.status, outcome.error, outcome.revision) == (status, error, commit), watch.log
    assert time.monotonic() - started < 30 and watch.seen
    assert wait_until(lambda: not processes("sleep 61.25") and not processes("sleep 61.5"), 5)


def test_the_time_limit_stops_the_build(tmp_path: Path, source: tuple[str, str]) -> None:
    url, commit = source
    watch = Watch()
    outcome = watch.run(spec(tmp_path, url, commit, SLOW_BUILDAH), tmp_path / "w", seconds=3)
    assert outcome.status == "failed" and outcome.error == "the build ran past its time limit and was stopped"
    assert "the build runs" in watch.log
    assert wait_until(lambda: not processes("sleep 61.25") and not processes("sleep 61.5"), 5)
