"""Issue 11's "done when", end to end with real clients and a real `dockyard serve`:

- skopeo pushes an image the test wrote (a Debian bookworm layer with a vulnerable openssh-client,
  a Python layer with a vulnerable urllib3); within seconds the embedded worker has scanned it and
  the API and `dockyard scan` show the findings with CVE id, severity, installed and fixed version
  and layer; its CycloneDX SBOM is a referrer of the image (`oras discover` when the binary is on
  the machine; the referrers API it calls otherwise);
- `dockyard vulndb import` into the running server's data directory flags the stored image with
  a new finding, without reading its layers again (they are deleted from the store first);
- with a namespace policy "block ≥ high", `podman pull` fails with the policy's message, succeeds
  once the CVE is allowlisted, and fails again when the allowlist entry has expired.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from dockyard.storage.layout import blob_path
from tests.conftest import ServerProcess, free_port, wait_for
from tests.e2e.clients import client_env
from tests.unit.scan.layerkit import File, dist_info, dpkg_stanza, dpkg_status, oci_layout, os_release, tar_bytes

pytestmark = pytest.mark.e2e

VULNDATA = Path(__file__).resolve().parents[1] / "data" / "vulndata"
CYCLONEDX = "application/vnd.cyclonedx+json"


def dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, timeout=120,
                          env=env, stdin=subprocess.DEVNULL)


def test_push_scan_report_sbom_reevaluate_and_policy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # The server starts with Debian's advisories only; PyPI's come later, into the running server.
    imported = dockyard("vulndb", "import", str(VULNDATA / "debian-vuln-list-tracker"), "--data", str(data))
    assert imported.returncode == 0, imported.stderr
    server = ServerProcess(data, free_port(), "e2e-" + uuid.uuid4().hex[:12]).start()
    try:
        _scenario(server, tmp_path)
    finally:
        server.stop()


def _scenario(server: ServerProcess, tmp_path: Path) -> None:
    api = httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=30)
    base = tar_bytes([
        File("etc/os-release", os_release("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")),
        File("var/lib/dpkg/status", dpkg_status(
            dpkg_stanza("libc6", "2.36-9+deb12u3", source="glibc"),
            dpkg_stanza("openssh-client", "1:9.2p1-2+deb12u2", source="openssh")))])
    python = tar_bytes(dist_info("urllib3", "1.26.5"))
    layout = tmp_path / "layout"
    digest = oci_layout(layout, [base, python], ["RUN apt-get install -y openssh-client",
                                                 "RUN pip install urllib3==1.26.5"], tag="1.0")
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())
    layers = [layer["digest"] for layer in manifest["layers"]]

    with client_env("dy-scan-") as env:
        login = f"{server.user}:{server.password}"
        env.run("skopeo", "copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", login,
                f"oci:{layout}:1.0", f"docker://{server.address}/sec/app:1.0")
        pushed = time.monotonic()

        path = f"/repositories/sec/app/manifests/{digest}/vulnerabilities"
        report = wait_for(lambda: api.get(path).json(), lambda doc: doc.get("status") == "done", timeout=30)
        took = time.monotonic() - pushed
        assert took < 15, f"the scan took {took:.1f} s after the push"
        found = {v["id"]: v for v in report["vulnerabilities"]}
        ssh = found["CVE-2024-6387"]
        assert (ssh["package"], ssh["installed_version"], ssh["fixed_version"]) == \
            ("openssh-client", "1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3")
        assert ssh["layer"] == layers[0] and ssh["severity"] in ("critical", "high", "medium", "low", "unknown")
        assert "CVE-2023-43804" not in found  # no PyPI advisories yet

        # The SBOM is a referrer of the image: what `oras discover` lists. It is pushed right after
        # the report is recorded (the report does not wait for it), so it may take a moment.
        def cyclonedx_referrers() -> list[str]:
            referrers = httpx.get(f"{server.url}/v2/sec/app/referrers/{digest}", auth=(server.user, server.password),
                                  params={"artifactType": CYCLONEDX}, timeout=30)
            if referrers.status_code == 401:  # token auth: the referrers API behind a bearer token
                referrers = _with_token(server, f"/v2/sec/app/referrers/{digest}?artifactType={CYCLONEDX}", "sec/app")
            return [m["artifactType"] for m in referrers.json()["manifests"]]

        assert wait_for(cyclonedx_referrers, bool, 15) == [CYCLONEDX]
        if shutil.which("oras"):
            out = subprocess.run(["oras", "discover", "--plain-http", "-u", server.user, "-p", server.password,
                                  f"{server.address}/sec/app@{digest}"], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and CYCLONEDX in out.stdout, out.stderr

        cli_env = {**os.environ, "DOCKYARD_PASSWORD": server.password}
        out = dockyard("scan", "sec/app:1.0", "--url", server.url, "--user", server.user, "--wait",
                       "--fail-on", "high", env=cli_env)
        assert out.returncode == 0, out.stdout + out.stderr  # nothing high yet
        assert "CVE-2024-6387" in out.stdout and "1:9.2p1-2+deb12u3" in out.stdout

        # A newer advisory set, imported into the running server's data directory: the stored
        # image is re-evaluated without its layers (moved out of the store meanwhile).
        aside = tmp_path / "aside"
        aside.mkdir()
        for layer in layers:
            blob_path(server.data / "blobs", layer).rename(aside / layer.split(":")[1])
        imported = dockyard("vulndb", "import", str(VULNDATA), "--data", str(server.data))
        assert imported.returncode == 0, imported.stderr
        report = wait_for(lambda: api.get(path).json(),
                          lambda doc: any(v["id"] == "CVE-2023-43804" for v in doc["vulnerabilities"]), timeout=30)
        urllib3 = {v["id"]: v for v in report["vulnerabilities"]}["CVE-2023-43804"]
        assert urllib3["new_since_last_scan"] is True and urllib3["severity"] == "high"
        assert urllib3["layer"] == layers[1] and urllib3["fixed_version"] == "1.26.17"
        for layer in layers:
            (aside / layer.split(":")[1]).rename(blob_path(server.data / "blobs", layer))

        out = dockyard("scan", "sec/app:1.0", "--url", server.url, "--user", server.user, "--fail-on", "high",
                       env=cli_env)
        assert out.returncode == 1 and "CVE-2023-43804" in out.stdout, out.stdout + out.stderr
        out = dockyard("scan", "sec/app:1.0", "--url", server.url, "--user", server.user, "--json", env=cli_env)
        assert json.loads(out.stdout)["digest"] == digest

        _console(server, digest)

        # Policy: block ≥ high.
        r = api.put("/namespaces/sec/scan-policy", json={"block_severity": "high"})
        assert r.status_code == 200, r.text
        env.run("podman", "login", "--tls-verify=false", "-u", server.user, "--password-stdin", server.address,
                input=server.password + "\n")
        image = f"{server.address}/sec/app:1.0"
        error = env.fails("podman", "pull", "--tls-verify=false", image)
        assert "denied" in error and "1 vulnerability of severity high or higher" in error, error
        assert f"/console/repo/sec/app/-/versions/{digest}/security" in error

        expires = datetime.now(timezone.utc) + timedelta(seconds=20)
        r = api.post("/namespaces/sec/allowlist", json={"vulnerability": "CVE-2023-43804", "reason": "e2e",
                                                        "expires_at": expires.isoformat()})
        assert r.status_code == 201, r.text
        env.run("podman", "pull", "--tls-verify=false", image)
        env.run("podman", "rmi", "-f", image, check=False)
        time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.5)
        error = env.fails("podman", "pull", "--tls-verify=false", image)
        assert "1 vulnerability of severity high or higher" in error, error


def _with_token(server: ServerProcess, path: str, repo: str) -> httpx.Response:
    challenge = httpx.get(f"{server.url}/v2/", timeout=10).headers["www-authenticate"]
    params = dict(p.split("=", 1) for p in challenge.split(" ", 1)[1].replace('"', "").split(","))
    token = httpx.get(params["realm"], params={"service": params["service"], "scope": f"repository:{repo}:pull"},
                      auth=(server.user, server.password), timeout=10).json()["token"]
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _console(server: ServerProcess, digest: str) -> None:
    """The finding in the console's Security tab, in a real browser (Debian's chromium)."""
    from tests.e2e.browser import chromium_browser, chromium_missing_reason, log_in, new_context, running_in_ci, screenshot

    if chromium_missing_reason() and not running_in_ci():
        return  # the browser suites skip the same way outside CI
    from playwright.sync_api import expect

    with chromium_browser() as browser:
        context = new_context(browser, server.url)
        try:
            page = context.new_page()
            log_in(page, server.user, server.password)
            page.goto("/console/repo/sec/app/-/versions/1.0/security")
            row = page.locator("[data-testid=finding-row][data-id=CVE-2023-43804]")
            expect(row).to_have_count(1, timeout=15_000)
            expect(row).to_contain_text("urllib3")
            expect(row).to_contain_text("1.26.17")
            expect(row).to_contain_text("RUN pip install urllib3==1.26.5")
            ssh = page.locator("[data-testid=finding-row][data-id=CVE-2024-6387]")
            expect(ssh).to_contain_text("1:9.2p1-2+deb12u3")
            screenshot(page, "40-security-after-a-real-scan")
        finally:
            context.close()
