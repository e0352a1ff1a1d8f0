"""Issue 12's "done when" for builds, end to end with real parts: `git daemon` on loopback serving
a repository the test commits and pushes to, GitHub-signed webhooks made exactly as GitHub signs
them, `buildah` building in the embedded worker of a real `dockyard serve`, skopeo reading the
result back, `dockyard build logs`, and a deployer receiver checking Standard Webhooks signatures.

- a push to main announced by a signed webhook builds the image under the rule's tags, labelled
  with the source and revision; a tag release-v1.2 becomes image tag 1.2;
- a wrong or missing signature starts nothing (401), a replayed delivery starts nothing;
- a failing Dockerfile gives a failed build whose log shows the error;
- a build over its time limit is failed and leaves no process behind;
- a build whose worker is SIGKILLed runs again when a worker is back, and ends (never stays running);
- two platforms give an image index with an image per platform;
- the deployer gets image.pushed and build.succeeded deliveries, validly signed, and one it
  answered with 500 is retried and shown in the delivery log.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, wait_for
from tests.git_server import GitServer, Repository, encode, github_headers, github_push, git
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

DOCKERFILE = "FROM scratch\nCOPY hello.txt /hello.txt\n"
BUSYBOX = Path("/bin/busybox")


def finished(b: dict[str, Any]) -> bool:
    return b["status"] not in ("queued", "running")


class Scenario:
    def __init__(self, server: ServerProcess, repo: Repository, tmp: Path) -> None:
        self.server = server
        self.repo = repo
        self.tmp = tmp
        self.api = httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=30)
        self.secret = ""

    def hook(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.server.url}/api/v1/repositories/team/app/build-hook", content=body, headers=headers,
                          timeout=30)

    def announce(self, ref: str, after: str, commit: str | None = None) -> list[int]:
        payload = github_push(ref, after)
        if commit:
            payload["head_commit"]["id"] = commit
        body = encode(payload)
        answer = self.hook(body, github_headers(self.secret, body))
        assert answer.status_code == 202, answer.text
        return list(answer.json()["builds"])

    def build(self, build_id: int, timeout: float = 120.0) -> dict[str, Any]:
        return wait_for(lambda: self.api.get(f"/builds/{build_id}").json(), finished, timeout)

    def builds(self) -> list[dict[str, Any]]:
        return list(self.api.get("/repositories/team/app/builds").json()["builds"])

    def log(self, build_id: int) -> str:
        return self.api.get(f"/builds/{build_id}/log").text

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", *args, "--tls-verify=false", "--creds", f"{self.server.user}:{self.server.password}"],
                              capture_output=True, text=True, timeout=120)

    def image_file(self, tag: str, path: str) -> tuple[dict[str, Any], bytes]:
        """(the image's labels, a file's content) of team/app:TAG, read back with skopeo."""
        inspected = self.skopeo("inspect", f"docker://{self.server.address}/team/app:{tag}")
        assert inspected.returncode == 0, inspected.stderr
        target = self.tmp / f"copy-{tag}"
        shutil.rmtree(target, ignore_errors=True)
        copied = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--src-creds",
                                 f"{self.server.user}:{self.server.password}",
                                 f"docker://{self.server.address}/team/app:{tag}", f"dir:{target}"],
                                capture_output=True, text=True, timeout=120)
        assert copied.returncode == 0, copied.stderr
        manifest = json.loads((target / "manifest.json").read_text())
        for layer in manifest["layers"]:
            data = (target / layer["digest"].split(":", 1)[1]).read_bytes()
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    if member.name.lstrip("./") == path.lstrip("/"):
                        extracted = tar.extractfile(member)
                        assert extracted is not None
                        return json.loads(inspected.stdout)["Labels"], extracted.read()
        raise AssertionError(f"{path} is not in team/app:{tag}")


def test_builds_from_signed_webhooks_with_logs_failures_limits_and_deliveries(tmp_path: Path) -> None:
    with GitServer(tmp_path) as git_server, Receiver(fail_first=1) as deployer:
        env = {"DOCKYARD_OUTBOUND__ALLOWED_NETWORKS": '["127.0.0.0/8"]', "DOCKYARD_JOBS__LEASE_SECONDS": "6",
               "DOCKYARD_SCAN__ENABLED": "false"}
        server = ServerProcess(tmp_path / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12], env=env).start()
        try:
            _scenario(Scenario(server, git_server.repository("app"), tmp_path), deployer)
        finally:
            server.stop()


def _scenario(s: Scenario, deployer: Receiver) -> None:
    api, repo = s.api, s.repo
    assert api.post("/namespaces", json={"name": "team"}).status_code == 201
    hook = api.post("/namespaces/team/webhooks", json={
        "url": deployer.url, "events": ["image.pushed", "build.succeeded", "build.failed"]})
    assert hook.status_code == 201, hook.text
    hook_id, hook_secret = hook.json()["id"], hook.json()["secret"]

    first = repo.commit({"Dockerfile": DOCKERFILE, "hello.txt": "hello from main\n"}, "first")
    repo.push("main")
    config = api.put("/repositories/team/app/build-config", json={
        "source": {"provider": "github", "url": repo.url},
        "rules": [{"kind": "branch", "match": "main", "tags": ["latest", "main-${sha7}"]},
                  {"kind": "tag", "match": "release-v(.*)", "tags": ["${1}"]}]})
    assert config.status_code == 200, config.text
    s.secret = config.json()["webhook_secret"]
    assert config.json()["webhook_url"] == f"{s.server.url}/api/v1/repositories/team/app/build-hook"
    assert api.get("/repositories/team/app/build-config").json()["webhook_secret"] == "********"

    # A wrong signature, no signature, a signature for another body: 401, nothing starts.
    body = encode(github_push("refs/heads/main", first))
    assert s.hook(body, github_headers("not-the-secret", body)).status_code == 401
    assert s.hook(body, {"X-GitHub-Event": "push", "Content-Type": "application/json"}).status_code == 401
    assert s.hook(body + b" ", github_headers(s.secret, body)).status_code == 401
    assert s.builds() == []

    # The signed push builds main under the rule's tags; a replay of its delivery starts nothing.
    headers = github_headers(s.secret, body)
    answer = s.hook(body, headers)
    assert answer.status_code == 202, answer.text
    (build_id,) = answer.json()["builds"]
    replay = s.hook(body, headers)
    assert replay.status_code == 200 and replay.json()["builds"] == [] and "before" in replay.json()["note"]
    built = s.build(build_id)
    assert built["status"] == "succeeded", s.log(build_id)
    assert built["tags"] == ["latest", f"main-{first[:7]}"] and built["revision"] == first
    labels, content = s.image_file(f"main-{first[:7]}", "hello.txt")
    assert content == b"hello from main\n"
    assert labels["org.opencontainers.image.revision"] == first
    assert labels["org.opencontainers.image.source"] == repo.url
    assert len(s.builds()) == 1

    logs = subprocess.run([sys.executable, "-m", "dockyard", "build", "logs", str(build_id), "--url", s.server.url,
                           "--user", s.server.user], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKYARD_PASSWORD": s.server.password})
    assert logs.returncode == 0, logs.stderr
    assert "buildah" in logs.stdout and f"team/app:main-{first[:7]}" in logs.stdout and "succeeded" in logs.stdout
    if _build_user_exists():  # scripts/test makes it: builds then run rootless, RUN steps in a user namespace
        assert "as dockyard-builder (rootless" in logs.stdout, logs.stdout[:500]

    # A tag release-v1.2 (annotated: GitHub's `after` is the tag object) becomes image tag 1.2.
    commit = repo.tag("release-v1.2")
    tag_object = git("rev-parse", "release-v1.2", cwd=repo.work)
    (tag_build,) = s.announce("refs/tags/release-v1.2", tag_object, commit)
    built = s.build(tag_build)
    assert built["status"] == "succeeded" and built["tags"] == ["1.2"], s.log(tag_build)
    assert s.image_file("1.2", "hello.txt")[1] == b"hello from main\n"

    # A failing Dockerfile: a failed build whose log shows buildah's error.
    broken = repo.commit({"Dockerfile": "FROM scratch\nCOPY missing.txt /missing.txt\n"}, "broken")
    repo.push("main")
    (failed_build,) = s.announce("refs/heads/main", broken)
    failed = s.build(failed_build)
    assert failed["status"] == "failed" and failed["digest"] is None
    failed_log = s.log(failed_build)
    assert "missing.txt" in failed_log and "buildah bud failed" in failed_log, failed_log

    # Over its time limit: failed, and no process of it is left.
    shutil.copy(BUSYBOX, repo.work / "busybox")
    slow = repo.commit({"Dockerfile": 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "97"]\n'},
                       "slow")
    repo.push("main")
    assert api.put("/repositories/team/app/build-config", json={
        "source": {"provider": "github", "url": repo.url}, "timeout_seconds": 10,
        "rules": [{"kind": "branch", "match": "main", "tags": ["latest"]}]}).status_code == 200
    (slow_build,) = s.announce("refs/heads/main", slow)
    timed_out = s.build(slow_build, 60)
    assert timed_out["status"] == "failed" and "time limit" in timed_out["error"], timed_out
    assert not _processes("sleep 97"), "a process of the stopped build is still running"

    # The worker SIGKILLed mid-build: the build runs again on the next worker and ends.
    again = repo.commit({"Dockerfile": 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "9"]\n'
                                       'COPY hello.txt /hello.txt\n'}, "again")
    repo.push("main")
    assert api.put("/repositories/team/app/build-config", json={
        "source": {"provider": "github", "url": repo.url},
        "rules": [{"kind": "branch", "match": "main", "tags": ["latest"]}]}).status_code == 200
    (killed_build,) = s.announce("refs/heads/main", again)
    wait_for(lambda: s.log(killed_build), lambda text: "sleep" in text, 60)
    s.server.stop(signal.SIGKILL)
    # gone within seconds (the child's PR_SET_PDEATHSIG), long before the 9 s sleep would end
    wait_for(lambda: _processes("sleep 9"), lambda found: not found, 4, 0.1)
    s.server.start()
    resumed = s.build(killed_build, 120)
    assert resumed["status"] == "succeeded", s.log(killed_build)
    assert "attempt 2" in s.log(killed_build)

    # Two platforms: an image index with one image each (copying files needs no emulator).
    assert api.put("/repositories/team/app/build-config", json={
        "source": {"provider": "github", "url": repo.url},
        "rules": [{"kind": "branch", "match": "main", "tags": ["multi"], "platforms": ["linux/amd64", "linux/arm64"]}]},
    ).status_code == 200
    started = api.post("/repositories/team/app/builds", json={"ref": "refs/heads/main"})
    assert started.status_code == 202, started.text
    multi = s.build(started.json()["id"])
    assert multi["status"] == "succeeded", s.log(multi["id"])
    raw = s.skopeo("inspect", "--raw", f"docker://{s.server.address}/team/app:multi")
    assert raw.returncode == 0, raw.stderr
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]

    # The deployer: image.pushed and build.succeeded, validly signed; the first answer was a 500,
    # retried, and the delivery log shows both attempts.
    def deliveries() -> list[dict[str, Any]]:
        return list(api.get(f"/namespaces/team/webhooks/{hook_id}/deliveries", params={"limit": 100}).json()["items"])

    retried = wait_for(deliveries, lambda items: any(
        len(d["attempts"]) >= 2 and d["attempts"][0]["response_status"] == 500 and d["status"] == "succeeded"
        for d in items), 120)
    assert retried
    seen = {r.json()["type"] for r in deployer.requests if r.body}
    assert {"image.pushed", "build.succeeded", "build.failed"} <= seen, seen
    assert all(deployer.verify(hook_secret, r) for r in deployer.requests)
    succeeded = [r.json() for r in deployer.requests if r.json()["type"] == "build.succeeded"]
    assert any(p["data"]["build"] == build_id and p["data"]["revision"] == first for p in succeeded)


def _build_user_exists() -> bool:
    """Builds run rootless here (builder/users.py: a dockyard-builder with subordinate ids, as root)."""
    from dockyard.builder.users import resolve

    return resolve("auto") is not None


def _processes(needle: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline and "pytest" not in cmdline:
                found.append(int(entry))
    return found
