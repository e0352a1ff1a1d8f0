"""examples/cluster/start runs what it promises: PostgreSQL, Ceph RGW, two `dockyard serve` nodes and
nginx round-robin on loopback, answering `skopeo login`, a push and a pull through the balancer with
token auth; `--stop` leaves no process behind.

The script starts its own gateway (not the session's `ceph_rgw`), so the cluster test is marked `s3`
only for what it needs installed. It needs root, as the script does (apt-get, PostgreSQL as
`postgres`). The config the nodes read is checked on its own, without starting anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.config import load_settings
from tests.conftest import ROOT, free_port
from tests.e2e import clients as cl
from tests.e2e.clients import ClientEnv
from tests.s3_support import process_running

START = ROOT / "examples" / "cluster" / "start"
CONFIG = ROOT / "examples" / "cluster" / "dockyard.yaml"
START_TIMEOUT = 600.0  # apt-get and pip when something is missing; the start itself takes ~30 s


class Cluster:
    """One examples/cluster/start run in a state directory of its own."""

    def __init__(self, state: Path, port: int, password: str) -> None:
        self.state, self.port, self.password = state, port, password
        self.address = f"127.0.0.1:{port}"
        self.pids: list[int] = []
        self.start_seconds = 0.0

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        # Output to a file, not a pipe: a daemon that kept the pipe open would hold up the read.
        out = self.state.parent / f"start{'-stop' if '--stop' in args else ''}.out"
        env = {**os.environ, "DOCKYARD_ADMIN_PASSWORD": self.password,
               # The script's watchdog stops the cluster should this test run die by SIGKILL.
               "DOCKYARD_CLUSTER_OWNER_PID": str(os.getpid())}
        with open(out, "w") as f:
            proc = subprocess.run([str(START), "--state", str(self.state), *args], env=env, stdout=f,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, text=True,
                                  start_new_session=True)
        proc.stdout = out.read_text()
        return proc

    def start(self) -> dict[str, str]:
        began = time.monotonic()
        proc = self._run("--port", str(self.port), timeout=START_TIMEOUT)
        self.start_seconds = time.monotonic() - began
        pids = self.state / "pids"
        if pids.exists():
            self.pids = [int(p) for p in pids.read_text().split()]
        assert proc.returncode == 0, f"examples/cluster/start failed ({proc.returncode}):\n{proc.stdout[-4000:]}"
        return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and line[:1].isupper())

    def stop(self) -> None:
        proc = self._run("--stop", timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]

    def kill_leftovers(self) -> None:
        """Whatever a failed stop left: SIGKILL by the recorded PIDs (bounded wait)."""
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(process_running(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if os.geteuid() != 0 or not (shutil.which("radosgw") or shutil.which("apt-get")):
        if os.environ.get("CI"):
            pytest.fail("examples/cluster/start needs root (and apt-get or the packages): run through scripts/test")
        pytest.skip("examples/cluster/start needs root (and apt-get or the packages)")
    c = Cluster(tmp_path / "state", free_port(), "cluster-" + os.urandom(6).hex())
    try:
        yield c
    finally:
        try:
            c.stop()  # idempotent: nothing to do when the test stopped it already
        finally:
            c.kill_leftovers()


@pytest.fixture
def env() -> Iterator[ClientEnv]:
    with cl.client_env() as e:
        yield e


def test_cluster_config_with_the_environment_the_start_script_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file gives what all nodes share; DOCKYARD_* variables (the script's, or a systemd
    EnvironmentFile's) fill in the rest without dropping the file's neighbouring keys."""
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    for name, value in {"DOCKYARD_SERVER__LISTEN": "127.0.0.1:5002", "DOCKYARD_DATA_DIR": "/srv/node2",
                        "DOCKYARD_DATABASE__URL": "postgresql+psycopg://dockyard:pw@127.0.0.1:5433/dockyard",
                        "DOCKYARD_STORAGE__S3__ENDPOINT": "http://127.0.0.1:7481",
                        "DOCKYARD_STORAGE__S3__ACCESS_KEY_ID": "ak", "DOCKYARD_STORAGE__S3__SECRET_ACCESS_KEY": "sk",
                        "DOCKYARD_AUTH__SIGNING_KEY_FILE": "/srv/shared/key.pem"}.items():
        monkeypatch.setenv(name, value)
    s = load_settings(CONFIG)
    assert s.server.listen == "127.0.0.1:5002" and s.data_dir == Path("/srv/node2")
    assert s.server.trusted_proxies == ["127.0.0.1"]
    assert s.database_url == "postgresql+psycopg://dockyard:pw@127.0.0.1:5433/dockyard"
    assert s.storage.driver == "s3" and s.storage.s3.path_style and s.storage.s3.bucket == "dockyard"
    assert s.storage.s3.endpoint == "http://127.0.0.1:7481" and s.storage.s3.access_key_id == "ak"
    assert s.key_path == Path("/srv/shared/key.pem")
    assert s.auth.basic_on_registry is False  # token auth only


@pytest.mark.e2e
@pytest.mark.s3
@pytest.mark.timeout(900)
def test_cluster_starts_and_answers_login_push_pull_through_the_balancer(
        cluster: Cluster, env: ClientEnv, tmp_path: Path) -> None:
    details = cluster.start()
    url, address = details["URL"], cluster.address
    assert url == f"http://{address}"
    assert details["ADMIN_PASSWORD"] == cluster.password
    assert len(cluster.pids) >= 7, cluster.pids  # mon, osd, radosgw, two nodes, postgres, nginx
    assert all(process_running(p) for p in cluster.pids)

    # Token auth only: Basic credentials straight on /v2/ are not taken, the token endpoint's are.
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{url}/v2/", auth=("admin", cluster.password)).status_code == 401
        token = http.get(f"{url}/auth/token", params={"service": "dockyard"}, auth=("admin", cluster.password))
        assert token.status_code == 200 and token.json()["token"]

    images = cl.build_images(tmp_path / "images", nonce=os.urandom(8))
    env.run("skopeo", "login", "--tls-verify=false", "-u", "admin", "--password-stdin", address,
            input=cluster.password + "\n")
    began = time.monotonic()
    env.run("skopeo", "copy", "--retry-times", "0", "--dest-tls-verify=false",
            images.ref("amd64"), f"docker://{address}/cluster/app:1")
    env.run("skopeo", "copy", "--retry-times", "0", "--all", "--dest-tls-verify=false",
            images.ref("multi"), f"docker://{address}/cluster/app:multi")
    pulled = tmp_path / "pulled"
    env.run("skopeo", "copy", "--retry-times", "0", "--src-tls-verify=false",
            f"docker://{address}/cluster/app:1", f"oci:{pulled}:1")
    env.run("skopeo", "copy", "--retry-times", "0", "--all", "--src-tls-verify=false",
            f"docker://{address}/cluster/app:multi", f"oci:{pulled}:multi")
    clients_seconds = time.monotonic() - began
    assert cl.verify_layout(pulled, "1") == images.digests["amd64"]
    assert cl.verify_layout(pulled, "multi") == images.digests["multi"]

    # Round-robin: both nodes served registry requests, tokens one node issued included.
    log = (cluster.state / "lb" / "access.log").read_text().splitlines()
    nodes = {line.split(" up=")[1].split()[0] for line in log if " up=" in line and "/v2/cluster/" in line}
    assert len(nodes) == 2, nodes

    cluster.stop()
    assert not [p for p in cluster.pids if process_running(p)], "processes left after --stop"
    assert not (cluster.state / "pgdir").exists()
    print(f"cluster start {cluster.start_seconds:.1f} s, login/push/pull {clients_seconds:.1f} s")
