"""An extra run, when the workspace's shared harness ../shared/e2e/run.sh is there: its real-client
checks (skopeo, podman, buildah, ctr, oras-py, python-dxf, curl) against a real `dockyard serve`
with token auth, as the admin, as a robot account and as a temporary password, and against the
reference registry as a control.

The project's own client tests (test_clients.py, test_access_e2e.py) cover the same ground without
it. A clone without ../shared does not collect these tests: tests/conftest.py deselects the
`shared_harness` marker, so they are neither failures nor skips there. DOCKYARD_SHARED_DIR points
at another copy of the shared directory (or at a missing one, to check the deselection).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import SHARED_E2E, ServerProcess, free_port
from tests.e2e import access_helpers as h

pytestmark = [pytest.mark.e2e, pytest.mark.shared_harness]

RUN_SH = SHARED_E2E / "run.sh"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
E2E_DIR = Path(os.environ.get("E2E_DIR") or "/tmp/e2e")
ROBOT_PERMISSIONS = [{"repositories": "*", "actions": ["pull", "push", "delete"]}]


def run_harness(address: str, user: str, password: str, name: str, private: bool = False) -> tuple[int, int, str]:
    """run.sh's (passed, failed, output). `private`: client state in a directory of its own, sharing
    only the built images and the venv of $E2E_DIR, so runs never share an auth file."""
    env = {**os.environ, "E2E_DIR": str(E2E_DIR)}
    root = None
    if private:
        # short path: run.sh puts containerd's unix socket under $E2E_DIR/runs/<id>/ (108-byte limit)
        root = Path(tempfile.mkdtemp(prefix="e2e-acc-", dir="/tmp"))
        env.update(E2E_DIR=str(root), E2E_IMAGES=str(E2E_DIR / "images"), E2E_VENV=str(E2E_DIR / "venv"))
        if (E2E_DIR / "storage-driver").exists() and "E2E_STORAGE_DRIVER" not in os.environ:
            env["E2E_STORAGE_DRIVER"] = (E2E_DIR / "storage-driver").read_text().strip()
        subprocess.run(["bash", str(SHARED_E2E / "build-images.sh")], check=True, capture_output=True, timeout=600,
                       env={**os.environ, "E2E_DIR": str(E2E_DIR)})
    try:
        proc = subprocess.run(["bash", str(RUN_SH), address, user, password], capture_output=True, text=True,
                              timeout=900, env=env)
    finally:
        if root is not None:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=False, capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
    output = proc.stdout + proc.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"e2e-{name}.txt").write_text(output)
    m = re.search(r"^(\d+) passed, (\d+) failed", output, re.M)
    assert m, f"no summary line in run.sh output:\n{output[-3000:]}"
    return int(m.group(1)), int(m.group(2)), output


def _fails(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.startswith("FAIL"))


def test_real_clients_against_dockyard(server: ServerProcess) -> None:
    passed, failed, output = run_harness(server.address, server.user, server.password, "dockyard")
    assert failed == 0, _fails(output)
    assert passed >= 60


def test_run_sh_as_robot_account(server: ServerProcess) -> None:
    h.create_namespace(server, "e2e", auto_create=True)
    user, secret = h.create_robot(server, "e2e", "ci", ROBOT_PERMISSIONS)
    assert user == "robot$e2e+ci"
    passed, failed, output = run_harness(server.address, user, secret, "robot", private=True)
    assert failed == 0, _fails(output)
    assert passed >= 60, output[-3000:]


def test_run_sh_as_developer_with_temporary_password(server: ServerProcess) -> None:
    h.create_namespace(server, "e2e", auto_create=True)
    h.create_user(server, "dev", namespace="e2e", role="developer")
    _, password = h.create_temp(server, "dev")
    passed, failed, output = run_harness(server.address, "dev", password, "temp-password", private=True)
    assert failed == 0, _fails(output)
    assert passed >= 60, output[-3000:]


@pytest.mark.skipif(not shutil.which("docker-registry"), reason="Debian's docker-registry is not installed")
def test_reference_registry_fails_what_dockyard_passes(tmp_path: Path) -> None:
    """The same harness against distribution 2.8.2 (token auth): it fails the three OCI 1.1
    checks that Dockyard passes, which shows the harness can tell them apart."""
    port = free_port()
    subprocess.run(["bash", str(SHARED_E2E / "start-reference-registry.sh"), str(port), "ref", "refpass", "token"],
                   check=True, capture_output=True, timeout=120, env={**os.environ, "E2E_DIR": str(E2E_DIR)})
    try:
        _, failed, output = run_harness(f"127.0.0.1:{port}", "ref", "refpass", "reference")
    finally:
        pids = E2E_DIR / f"refreg-{port}.pids"
        if pids.exists():
            subprocess.run(["kill", *pids.read_text().split()], check=False)
    fails = {line.split(":")[0] + ":" + line.split(":")[1] for line in output.splitlines() if line.startswith("FAIL")}
    assert failed == 3, fails
    assert any("referrers" in f for f in fails)
    assert any("out-of-order" in f for f in fails)
    assert any("tags/list pagination" in f for f in fails)
