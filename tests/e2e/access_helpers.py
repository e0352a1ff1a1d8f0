"""Helpers for the access-control end-to-end tests (tests/e2e/test_access_e2e.py).

Namespaces, members, robots and temporary passwords are written straight into the stores of a
running `dockyard serve` (its SQLite database under the data directory), and real clients
(skopeo, podman, ../shared/e2e/run.sh) run with their state in a private directory, so these
tests never share containers/storage or an auth file with another harness run. Only the test
images (`$E2E_DIR/images`) and the Python venv of the shared harness directory are reused.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dockyard.app import Services, build_services
from dockyard.auth.passwords import hash_password
from dockyard.config import load_settings
from tests.conftest import ServerProcess

SHARED_E2E = Path(__file__).resolve().parents[2].parent / "shared" / "e2e"
RUN_SH = SHARED_E2E / "run.sh"
ENV_SH = SHARED_E2E / "env.sh"
BUILD_IMAGES = SHARED_E2E / "build-images.sh"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHARED_DIR = Path(os.environ.get("E2E_DIR") or "/tmp/e2e")


@contextlib.contextmanager
def stores(server: ServerProcess) -> Iterator[Services]:
    """The server's stores, through a second connection to its database."""
    svc = build_services(load_settings(data_dir=server.data))
    try:
        yield svc
    finally:
        svc.db.dispose()


def create_namespace(server: ServerProcess, name: str, public: bool = False, auto_create: bool = True) -> None:
    with stores(server) as svc:
        svc.namespaces.create(name, f"e2e namespace {name}", public=public, auto_create=auto_create)


def create_user(server: ServerProcess, name: str, namespace: str | None = None, role: str | None = None) -> str:
    """A non-admin user (optionally a member of `namespace`); returns its account password."""
    password = "pw-" + secrets.token_urlsafe(16)
    with stores(server) as svc:
        svc.users.create(name, hash_password(password))
        if namespace is not None and role is not None:
            assert svc.namespaces.set_member(namespace, name, role)
    return password


def create_robot(server: ServerProcess, namespace: str, name: str, permissions: list[dict[str, Any]],
                 expires_at: datetime | None = None) -> tuple[str, str]:
    """Returns (login name, secret)."""
    secret = "dkr_" + secrets.token_urlsafe(32)
    with stores(server) as svc:
        robot = svc.credentials.add_robot(namespace, name, secret, permissions, "e2e robot", expires_at)
    return robot.username, secret


def disable_robot(server: ServerProcess, namespace: str, name: str) -> None:
    with stores(server) as svc:
        assert svc.credentials.update_robot(namespace, name, disabled=True)


def create_temp(server: ServerProcess, username: str, expires_in: timedelta = timedelta(hours=1),
                repositories: list[str] | None = None, actions: list[str] | None = None) -> tuple[str, str]:
    """A temporary password of `username`; returns (id, password)."""
    temp_id = uuid.uuid4().hex
    password = f"dkt_{temp_id}_{secrets.token_urlsafe(32)}"
    with stores(server) as svc:
        svc.credentials.add_temp(temp_id, username, password, datetime.now(UTC) + expires_in, "e2e",
                                 repositories, actions)
    return temp_id, password


def revoke_temp(server: ServerProcess, temp_id: str) -> None:
    with stores(server) as svc:
        assert svc.credentials.revoke_temp(temp_id)


@dataclass
class Clients:
    """Runs shell commands with ../shared/e2e/env.sh sourced and client state under `root`."""

    root: Path

    def env(self) -> dict[str, str]:
        env = {**os.environ, "E2E_DIR": str(self.root), "E2E_IMAGES": str(SHARED_DIR / "images"),
               "E2E_VENV": str(SHARED_DIR / "venv"), "TMPDIR": str(self.root / "tmp")}
        driver = SHARED_DIR / "storage-driver"
        if "E2E_STORAGE_DRIVER" not in os.environ and driver.exists():
            env["E2E_STORAGE_DRIVER"] = driver.read_text().strip()
        return env

    def sh(self, script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`bash -c 'source env.sh && SCRIPT' _ ARGS...` (arguments as $1, $2, ...)."""
        return subprocess.run(["bash", "-c", f'source "{ENV_SH}" && {script}', "_", *args], capture_output=True,
                              text=True, timeout=timeout, env=self.env())

    @property
    def busybox(self) -> str:
        return str(SHARED_DIR / "images" / "busybox")

    def run_harness(self, address: str, user: str, password: str, name: str) -> tuple[int, int, str]:
        proc = subprocess.run(["bash", str(RUN_SH), address, user, password], capture_output=True, text=True,
                              timeout=900, env=self.env())
        output = proc.stdout + proc.stderr
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"e2e-{name}.txt").write_text(output)
        m = re.search(r"^(\d+) passed, (\d+) failed", output, re.M)
        assert m, f"no summary line in run.sh output:\n{output[-3000:]}"
        return int(m.group(1)), int(m.group(2)), output


@contextlib.contextmanager
def private_clients() -> Iterator[Clients]:
    # Short path: run.sh puts containerd's unix socket under $E2E_DIR/runs/<id>/ (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="e2e-acc-", dir="/tmp"))
    (root / "tmp").mkdir()
    clients = Clients(root)
    try:
        yield clients
    finally:
        clients.sh("podman rmi -a -f >/dev/null 2>&1; true", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def ensure_images() -> None:
    """Build the harness's test images in the shared directory (a no-op when they are there)."""
    subprocess.run(["bash", str(BUILD_IMAGES)], check=True, capture_output=True, timeout=600,
                   env={**os.environ, "E2E_DIR": str(SHARED_DIR)})
