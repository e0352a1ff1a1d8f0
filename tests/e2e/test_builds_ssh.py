"""A build from an SSH source with a deploy key, against a real OpenSSH server on loopback (Debian's
`openssh-server`, run with a configuration of the test's own: its host key, the deploy key as the
only authorised key, no passwords).

- "build now" resolves the branch with `git ls-remote` over SSH, and the build fetches over SSH,
  as the build user, with the key written for that build alone;
- the key is never shown again (masked in the API);
- a key the server does not know fails the build, with ssh's refusal in the log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, wait_for
from tests.git_server import git

pytestmark = pytest.mark.e2e

SSHD = Path("/usr/sbin/sshd")
if not SSHD.exists() and not os.environ.get("CI"):
    pytest.skip("openssh-server is not installed (scripts/test installs it)", allow_module_level=True)


def keypair(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.read_text()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    """(port, a bare repository with a commit, the private deploy key the server accepts)."""
    root = Path(f"/tmp/dy-sshd-{uuid.uuid4().hex[:8]}")  # readable by sshd (pytest's tmp_path is not, to other users)
    root.mkdir()
    keypair(root / "hostkey")
    deploy = keypair(root / "deploy")
    (root / "authorized_keys").write_text((root / "deploy.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'hostkey'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", f"PidFile {root / 'sshd.pid'}", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    work = tmp_path / "work"
    git("init", "-q", "--bare", str(root / "app.git"), cwd=tmp_path)
    git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    (work / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (work / "hello.txt").write_text("over ssh\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    git("push", "-q", str(root / "app.git"), "HEAD:refs/heads/main", cwd=work)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(root / "sshd.log", "wb"))
    try:
        wait_for(lambda: _listening(port), bool, 10, 0.05)
        yield port, root / "app.git", deploy
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_a_build_from_an_ssh_source_with_a_deploy_key(tmp_path: Path, sshd: tuple[int, Path, str]) -> None:
    port, repository, deploy = sshd
    env = {"DOCKYARD_OUTBOUND__ALLOWED_NETWORKS": '["127.0.0.0/8"]', "DOCKYARD_SCAN__ENABLED": "false"}
    server = ServerProcess(tmp_path / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12], env=env).start()
    try:
        api = httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=60)
        assert api.post("/namespaces", json={"name": "team"}).status_code == 201
        url = f"ssh://root@127.0.0.1:{port}{repository}"
        config = api.put("/repositories/team/app/build-config", json={
            "source": {"provider": "git", "url": url, "ssh_key": deploy},
            "rules": [{"kind": "branch", "match": "main", "tags": ["latest"]}]})
        assert config.status_code == 200, config.text
        assert config.json()["source"]["ssh_key"] == "********"
        assert deploy.strip().splitlines()[1] not in api.get("/repositories/team/app/build-config").text

        started = api.post("/repositories/team/app/builds", json={"ref": "refs/heads/main"})  # ls-remote over ssh
        assert started.status_code == 202, started.text
        build = wait_for(lambda: api.get(f"/builds/{started.json()['id']}").json(),
                         lambda b: b["status"] not in ("queued", "running"), 120)
        log = api.get(f"/builds/{build['id']}/log").text
        assert build["status"] == "succeeded", log
        assert deploy.strip().splitlines()[1] not in log

        # Another key: the server refuses it, and the build says so.
        other = keypair(tmp_path / "other")
        assert api.put("/repositories/team/other/build-config", json={
            "source": {"provider": "git", "url": url, "ssh_key": other},
            "rules": [{"kind": "branch", "match": "main", "tags": ["latest"]}]}).status_code == 200
        refused = api.post("/repositories/team/other/builds", json={"ref": build["revision"]})  # a commit: no ls-remote
        assert refused.status_code == 202, refused.text
        failed = wait_for(lambda: api.get(f"/builds/{refused.json()['id']}").json(),
                          lambda b: b["status"] not in ("queued", "running"), 120)
        assert failed["status"] == "failed"
        assert "Permission denied" in api.get(f"/builds/{failed['id']}/log").text
    finally:
        server.stop()
