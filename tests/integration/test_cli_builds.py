"""`dockyard build configure|config|start|list|logs|cancel` against a real `dockyard serve` (its
embedded build worker running buildah), building from a repository on a real `git daemon` on
127.0.0.1 (tests/git_server.py): the commands run through click's CliRunner and talk HTTP to the
server, as they would from a terminal.

One server and one source repository for the module (a server takes a second or two to start);
each test configures a repository of its own, so they run in any order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from dockyard.cli import main
from tests.conftest import ServerProcess, free_port
from tests.git_server import GitServer, Repository

pytestmark = pytest.mark.e2e

DOCKERFILE = "FROM scratch\nCOPY hello.txt /hello.txt\n"


@dataclass
class Setup:
    server: ServerProcess
    repo: Repository
    api: httpx.Client

    def run(self, *args: str, code: int = 0) -> Result:
        env = {"DOCKYARD_URL": self.server.url, "DOCKYARD_USER": self.server.user,
               "DOCKYARD_PASSWORD": self.server.password}
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("cli-builds")
    with GitServer(tmp) as git_server:
        env = {"DOCKYARD_OUTBOUND__ALLOWED_NETWORKS": '["127.0.0.0/8"]', "DOCKYARD_SCAN__ENABLED": "false",
               "DOCKYARD_JOBS__POLL_SECONDS": "0.5"}
        server = ServerProcess(tmp / "data", free_port(), "cli-" + uuid.uuid4().hex[:12], env=env).start()
        try:
            with httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=30) as api:
                assert api.post("/namespaces", json={"name": "team"}).status_code == 201
                repo = git_server.repository("app")
                repo.commit({"Dockerfile": DOCKERFILE, "hello.txt": "hello from the command line\n"}, "first")
                repo.push("main")
                yield Setup(server, repo, api)
        finally:
            server.stop()


def test_configure_prints_the_webhook_url_and_secret_once(setup: Setup) -> None:
    args = ["build", "configure", "team/configured", "--provider", "github", "--source", setup.repo.url,
            "--rule", "tag:release-v(.*)=${1}", "--rule", "branch:main=latest"]
    lines = setup.run(*args).stdout.splitlines()
    assert lines[0] == f"builds of team/configured configured from {setup.repo.url}"
    assert lines[1] == f"provider webhook URL: {setup.server.url}/api/v1/repositories/team/configured/build-hook"
    assert lines[2].startswith("provider webhook secret (shown only now): dkh_")
    secret = lines[2].rsplit(" ", 1)[1]

    shown = json.loads(setup.run("build", "config", "team/configured").stdout)
    assert shown["webhook_secret"] == "********" and secret not in json.dumps(shown)
    assert shown["source"] == {"provider": "github", "url": setup.repo.url, "token": None, "ssh_key": None}
    assert [(r["kind"], r["match"], r["tags"]) for r in shown["rules"]] == [
        ("tag", "release-v(.*)", ["${1}"]), ("branch", "main", ["latest"])]
    assert shown["auto_build"] is True and shown["poll_interval_seconds"] is None

    # configuring again keeps the secret (the answer to a change shows it); --rotate-secret makes a new one
    assert setup.run(*args).stdout.splitlines()[2].endswith(secret)
    rotated = setup.run(*args, "--rotate-secret", "--manual-only", "--poll", "300").stdout.splitlines()[2]
    assert not rotated.endswith(secret)
    shown = json.loads(setup.run("build", "config", "team/configured").stdout)
    assert shown["auto_build"] is False and shown["poll_interval_seconds"] == 300


def test_bad_options_and_refusals(setup: Setup) -> None:
    assert "give --source and at least one --rule" in setup.run("build", "configure", "team/usage", "--source",
                                                                setup.repo.url, code=2).output
    assert "KIND:REGEX=TAG" in setup.run("build", "configure", "team/usage", "--source", setup.repo.url,
                                         "--rule", "main=latest", code=2).output
    assert "link-local" in setup.run("build", "configure", "team/usage", "--source", "http://169.254.169.254/x",
                                     "--rule", "branch:main=latest", code=1).output
    assert "no build configuration" in setup.run("build", "start", "team/usage", "main", code=1).output
    setup.run("build", "configure", "team/usage", "--source", setup.repo.url, "--rule", "branch:main=latest")
    assert "refs/heads/nope is not in" in setup.run("build", "start", "team/usage", "nope", code=1).output


def test_start_follows_the_log_to_the_end_then_list_and_logs(setup: Setup) -> None:
    setup.run("build", "configure", "team/app", "--source", setup.repo.url, "--rule", "branch:main=latest")
    result = setup.run("build", "start", "team/app", "main", "-f")
    assert "fetching refs/heads/main" in result.stdout and "buildah" in result.stdout
    assert f"pushed {setup.server.address}/team/app:latest sha256:" in result.stdout
    assert "[dockyard] succeeded" in result.stdout
    build_id = int(result.stderr.split()[1])
    assert result.stderr.splitlines()[0] == f"build {build_id} queued: refs/heads/main -> latest"
    assert result.stderr.splitlines()[-1] == f"build {build_id} succeeded"
    build = setup.api.get(f"/builds/{build_id}").json()
    assert build["status"] == "succeeded" and build["tags"] == ["latest"]
    manifest = httpx.get(f"{setup.server.url}/v2/team/app/manifests/latest",
                         auth=(setup.server.user, setup.server.password),
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                            "application/vnd.docker.distribution.manifest.v2+json"})
    assert manifest.status_code == 200 and manifest.headers["docker-content-digest"] == build["digest"]

    rows = setup.run("build", "list", "team/app").stdout.splitlines()
    assert rows[0].split() == ["ID", "STATUS", "REF", "REVISION", "TAGS", "DIGEST", "CREATED", "ERROR"]
    assert rows[1].split()[:5] == [str(build_id), "succeeded", "refs/heads/main", build["revision"][:12], "latest"]
    assert json.loads(setup.run("build", "list", "team/app", "--json").stdout)[0]["id"] == build_id
    log = setup.run("build", "logs", str(build_id)).stdout
    assert log == setup.api.get(f"/builds/{build_id}/log").text and "[dockyard] succeeded" in log
    followed = setup.run("build", "logs", str(build_id), "-f")
    assert followed.stdout == log and followed.stderr == f"build {build_id} succeeded\n"
    assert "no builds of team/none" in setup.run("build", "list", "team/none").output

    # a failing Dockerfile (on a branch of its own): exit status 1, the error in the log
    setup.repo.commit({"Dockerfile": "FROM scratch\nCOPY missing.txt /missing.txt\n"}, "broken")
    setup.repo.push("broken")
    setup.run("build", "configure", "team/app", "--source", setup.repo.url, "--rule", "branch:broken=broken")
    result = setup.run("build", "start", "team/app", "refs/heads/broken", "--follow", code=1)
    assert "missing.txt" in result.stdout and "buildah bud failed" in result.stdout
    failed_id = int(result.stderr.split()[1])
    assert result.stderr.splitlines()[-1] == f"build {failed_id} failed"
    assert setup.run("build", "logs", str(failed_id), "-f", code=1).stderr == f"build {failed_id} failed\n"


def test_cancel_a_queued_build(setup: Setup, tmp_path: Path) -> None:
    # a rule for workers this server does not have: its builds stay queued
    config = tmp_path / "build.yaml"
    config.write_text(f"source: {{provider: git, url: '{setup.repo.url}'}}\n"
                      "rules:\n- {kind: branch, match: main, tags: [overseas], worker_labels: {region: overseas}}\n")
    setup.run("build", "configure", "team/queued", "--file", str(config))
    queued = json.loads(setup.run("build", "start", "team/queued", "main", "--json").stdout)
    build_id = queued["id"]
    assert queued["builds"][0]["status"] == "queued" and queued["builds"][0]["tags"] == ["overseas"]
    assert setup.run("build", "cancel", str(build_id)).stdout == f"build {build_id}: cancelled\n"
    assert setup.api.get(f"/builds/{build_id}").json()["status"] == "cancelled"
    assert json.loads(setup.run("build", "cancel", str(build_id), "--json").stdout)["status"] == "cancelled"
    assert "not found" in setup.run("build", "cancel", "999999", code=1).output
