"""Real clients (skopeo, podman, buildah, containerd, oras, python-dxf, curl) against a real
`dockyard serve` with authentication on, through ../shared/e2e/run.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_port

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RUN_SH = SHARED / "e2e" / "run.sh"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not RUN_SH.exists(), reason="../shared/e2e/run.sh not found")]


def run_harness(address: str, user: str, password: str, name: str) -> tuple[int, int, str]:
    env = {**os.environ, "E2E_DIR": os.environ.get("E2E_DIR", "/tmp/e2e")}
    proc = subprocess.run(["bash", str(RUN_SH), address, user, password], capture_output=True, text=True,
                          timeout=900, env=env)
    output = proc.stdout + proc.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"e2e-{name}.txt").write_text(output)
    m = re.search(r"^(\d+) passed, (\d+) failed", output, re.M)
    assert m, f"no summary line in run.sh output:\n{output[-3000:]}"
    return int(m.group(1)), int(m.group(2)), output


def test_real_clients_against_dockyard(server: ServerProcess) -> None:
    passed, failed, output = run_harness(server.address, server.user, server.password, "dockyard")
    fails = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert failed == 0, "\n".join(fails)
    assert passed >= 60


@pytest.mark.skipif(not shutil.which("docker-registry"), reason="Debian's docker-registry is not installed")
def test_reference_registry_fails_what_dockyard_passes(tmp_path: Path) -> None:
    """The same harness against distribution 2.8.2 (token auth): it fails the three OCI 1.1
    checks that Dockyard passes, which shows the harness can tell them apart."""
    port = free_port()
    script = SHARED / "e2e" / "start-reference-registry.sh"
    e2e_dir = os.environ.get("E2E_DIR", "/tmp/e2e")
    subprocess.run(["bash", str(script), str(port), "ref", "refpass", "token"], check=True, capture_output=True,
                   timeout=120, env={**os.environ, "E2E_DIR": e2e_dir})
    try:
        _, failed, output = run_harness(f"127.0.0.1:{port}", "ref", "refpass", "reference")
    finally:
        pids = Path(e2e_dir) / f"refreg-{port}.pids"
        if pids.exists():
            subprocess.run(f"kill {pids.read_text().strip()}", shell=True, check=False)
    fails = {line.split(":")[0] + ":" + line.split(":")[1] for line in output.splitlines() if line.startswith("FAIL")}
    assert failed == 3, fails
    assert any("referrers" in f for f in fails)
    assert any("out-of-order" in f for f in fails)
    assert any("tags/list pagination" in f for f in fails)
