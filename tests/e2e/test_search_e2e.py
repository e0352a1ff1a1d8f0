"""`podman search` (containers/image's registry search: GET /v1/search) against a real `dockyard
serve`: public repositories are found with their descriptions, a private one never appears."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port

pytestmark = pytest.mark.e2e

if shutil.which("podman") is None and not os.environ.get("CI"):
    pytest.skip("podman is not installed (scripts/test installs it)", allow_module_level=True)


def test_podman_search_finds_public_repositories_only(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12],
                           env={"DOCKYARD_SCAN__ENABLED": "false"}).start()
    try:
        api = httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=30)
        assert api.post("/namespaces", json={"name": "pub", "public": True}).status_code == 201
        assert api.post("/namespaces", json={"name": "secret"}).status_code == 201
        for name, summary in (("pub/webserver", "a small web server"), ("pub/webtools", None),
                              ("secret/webserver", "not for everyone")):
            assert api.post("/repositories", json={"name": name, "summary": summary}).status_code == 201
        assert api.put("/repositories/pub/webserver/star").status_code == 200
        (tmp_path / "auth.json").write_text('{"auths": {}}')
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}  # no stored credentials
        done = subprocess.run(["podman", "search", "--tls-verify=false", "--format", "json", f"{server.address}/web"],
                              capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        found = {entry["Name"]: entry for entry in json.loads(done.stdout)}
        assert set(found) == {f"{server.address}/pub/webserver", f"{server.address}/pub/webtools"}
        assert found[f"{server.address}/pub/webserver"]["Description"] == "a small web server"
        assert found[f"{server.address}/pub/webserver"]["Stars"] == 1
    finally:
        server.stop()
