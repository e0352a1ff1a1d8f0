"""The README's walk-through, from the CLI alone, against a real `dockyard serve`: create a
namespace and a repository, set a fixed password, `podman login` with it, tag, push, and list the
repository's tags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.e2e import clients as cl

pytestmark = pytest.mark.e2e


def test_walkthrough_from_the_cli(server: ServerProcess, tmp_path: Path) -> None:
    images = cl.build_images(tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
           "DOCKYARD_URL": server.url, "DOCKYARD_USER": server.user, "DOCKYARD_PASSWORD": server.password}

    def cli(*args: str, input: str | None = None) -> str:
        proc = subprocess.run([sys.executable, "-m", "dockyard", *args], input=input, capture_output=True, text=True,
                              timeout=60, env=env, stdin=None if input is not None else subprocess.DEVNULL)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    cli("namespace", "create", "team", "--description", "Team images", "--private")
    cli("repo", "create", "team/app", "--summary", "The app", "--visibility", "private")
    cli("credential", "password", "--password-stdin", input="s3cret-registry-pw\n")
    with cl.client_env() as clients:
        clients.run("podman", "login", "--tls-verify=false", "-u", server.user, "--password-stdin", server.address,
                    input="s3cret-registry-pw\n")
        image = clients.run("podman", "pull", "-q", images.ref("amd64")).stdout.strip()
        clients.run("podman", "tag", image, f"{server.address}/team/app:1.0")
        clients.run("podman", "push", "--tls-verify=false", f"{server.address}/team/app:1.0")
    tags = json.loads(cli("repo", "tags", "team/app", "--json"))
    assert [t["name"] for t in tags] == ["1.0"]
    assert tags[0]["digest"].startswith("sha256:")
    assert "1.0" in cli("repo", "tags", "team/app")
