"""The README's walk-through, from the CLI alone, against a real `dockyard serve`: create a
namespace and a repository, set a fixed password, `podman login` with it, tag, push, and list the
repository's tags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ServerProcess
from tests.e2e.access_helpers import ensure_images, private_clients

pytestmark = pytest.mark.e2e


def test_walkthrough_from_the_cli(server: ServerProcess) -> None:
    ensure_images()
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
    with private_clients() as clients:
        login = clients.sh('echo "$2" | podman login --tls-verify=false -u "$1" --password-stdin "$3"',
                           server.user, "s3cret-registry-pw", server.address)
        assert login.returncode == 0, login.stderr
        script = ('podman pull -q "oci:$1:amd64" >/dev/null && podman tag "$(podman images -q | head -1)" "$2/team/app:1.0" '
                  '&& podman push --tls-verify=false "$2/team/app:1.0"')
        push = clients.sh(script, clients.busybox, server.address)
        assert push.returncode == 0, push.stderr
    tags = json.loads(cli("repo", "tags", "team/app", "--json"))
    assert [t["name"] for t in tags] == ["1.0"]
    assert tags[0]["digest"].startswith("sha256:")
    assert "1.0" in cli("repo", "tags", "team/app")
