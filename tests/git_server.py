"""A real git server for tests: Debian's `git daemon` on 127.0.0.1 serving bare repositories
(push enabled), and a working clone to commit and push from, as a developer would.

    with GitServer(tmp_path) as git:
        repo = git.repository("app")
        sha = repo.commit({"Dockerfile": "FROM scratch\\n"}, "first")
        repo.push("main")
        repo.tag("release-v1.2")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV},
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Repository:
    def __init__(self, server: GitServer, name: str) -> None:
        self.server = server
        self.name = name
        self.url = f"git://127.0.0.1:{server.port}/{name}.git"
        self.work = server.root / "work" / name
        git("init", "-q", "--bare", str(server.root / "served" / f"{name}.git"), cwd=server.root)
        git("init", "-q", "-b", "main", str(self.work), cwd=server.root)
        git("remote", "add", "origin", self.url, cwd=self.work)

    def commit(self, files: dict[str, str | bytes], message: str = "change") -> str:
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, branch: str = "main") -> None:
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)

    def tag(self, name: str) -> str:
        """An annotated tag of HEAD, pushed; returns the commit."""
        git("tag", "-a", name, "-m", name, cwd=self.work)
        git("push", "-q", "origin", f"refs/tags/{name}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


class GitServer:
    def __init__(self, root: Path) -> None:
        self.root = root / "git"
        self.port = _port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GitServer:
        (self.root / "served").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={self.root / 'served'}", "--export-all",
             "--enable=receive-pack", "--listen=127.0.0.1", f"--port={self.port}", str(self.root / "served")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def repository(self, name: str) -> Repository:
        return Repository(self, name)


def github_push(ref: str, after: str, before: str = "0" * 40) -> dict[str, Any]:
    """A GitHub push event payload (the fields Dockyard reads, and some it does not)."""
    return {"ref": ref, "before": before, "after": after, "created": before == "0" * 40, "deleted": False,
            "forced": False, "head_commit": {"id": after, "message": "change"},
            "repository": {"full_name": "team/app", "clone_url": "https://github.com/team/app.git"},
            "pusher": {"name": "test"}}


def github_headers(secret: str, body: bytes, event: str = "push", delivery: str | None = None) -> dict[str, str]:
    """Signed as GitHub documents it: X-Hub-Signature-256 = sha256= + hex HMAC-SHA256 of the body."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature, "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/test"}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
