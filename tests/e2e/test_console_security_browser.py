"""The console's Security tab in a real browser (Debian's chromium under Playwright) against a real
`dockyard serve`: turn a namespace's scan on push off and allowlist a vulnerability through its
Security card, push an image, write its scan result straight into the server's database (no
scanner, no advisory database needed), then read the Vulnerabilities column of the versions
list, open the version's Security tab, filter it (htmx), open its packages, and see it in
Simplified Chinese too. Screenshots go to test-artifacts/console/ (30-… to 39-security-*.png).

Run: .venv/bin/python -m pytest tests/e2e/test_console_security_browser.py
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.e2e.browser import (
    log_in,
    skip_without_browser,
    EXPECT_TIMEOUT_MS,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    PageWatch,
    Registry,
    browsing_on,
    chromium_browser,
    console_server_process,
    descriptor,
    dumps,
    has_cjk,
    make_config,
    make_layer,
    path_of,
    screenshot,
    screenshot_on_failure,
)

pytestmark = pytest.mark.e2e

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

NAMESPACE = "secteam"
REPO = f"{NAMESPACE}/webapp"
TAG = "1.0"
BASE_CMD = "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf in / "
APT_CMD = "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends openssl curl libxml2 # buildkit"


@pytest.fixture(scope="module")
def security_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("console-security") / "data"
    with console_server_process(data, "registry-vpc.security.test:5000") as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


def push_two_layer_image(registry: Registry) -> tuple[str, list[str]]:
    """An image of a base layer and an apt-get layer; (manifest digest, layer digests)."""
    base, base_id = make_layer({"etc/os-release": b'ID=debian\nVERSION_ID="12"\n'})
    apt, apt_id = make_layer({"usr/lib/x86_64-linux-gnu/libssl.so.3": b"not really a library"})
    config = make_config("linux", "amd64", [base_id, apt_id], [BASE_CMD, APT_CMD])
    manifest = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, base), descriptor(OCI_LAYER, apt)]})
    for blob in (config, base, apt):
        registry.push_blob(REPO, blob)
    digest = registry.put_manifest(REPO, TAG, manifest, OCI_MANIFEST)
    return digest, [descriptor(OCI_LAYER, base)["digest"], descriptor(OCI_LAYER, apt)["digest"]]


def write_scan(data: Path, digest: str, layers: list[str]) -> None:
    """A finished scan of `digest`, written into the server's SQLite database as a scanner would."""
    from dockyard.meta.db import Database
    from dockyard.meta.jobs import JobStore
    from dockyard.meta.scans import ScanStore
    from dockyard.registry.scans import summarize
    from dockyard.scan.codec import encode_findings, encode_inventory, finding_key
    from dockyard.scan.model import Finding, Inventory, LayerInfo, OsInfo, Package

    status = "var/lib/dpkg/status"
    inventory = Inventory(
        os=OsInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
        layers=(LayerInfo(layers[0], BASE_CMD), LayerInfo(layers[1], APT_CMD)),
        packages=(Package("libc6", "2.36-9+deb12u4", "deb", 0, status, "glibc", "2.36-9+deb12u4", "amd64"),
                  Package("zlib1g", "1:1.2.13.dfsg-1", "deb", 0, status, "zlib", "1:1.2.13.dfsg-1", "amd64"),
                  Package("libssl3", "3.0.11-1~deb12u2", "deb", 1, status, "openssl", "3.0.11-1~deb12u2", "amd64"),
                  Package("curl", "7.88.1-10+deb12u5", "deb", 1, status, "curl", "7.88.1-10+deb12u5", "amd64"),
                  Package("libxml2", "2.9.14+dfsg-1.3~deb12u1", "deb", 1, status, "libxml2",
                          "2.9.14+dfsg-1.3~deb12u1", "amd64")))
    findings = [
        Finding("CVE-2024-5535", ("DSA-5728-1",), "libssl3", "3.0.11-1~deb12u2", "deb", "critical", 1,
                fixed_version="3.0.13-1~deb12u1", source_package="openssl", cvss_score=9.1,
                title="SSL_select_next_proto buffer overread"),
        Finding("CVE-2024-2398", (), "curl", "7.88.1-10+deb12u5", "deb", "high", 1, fixed_version="7.88.1-10+deb12u6",
                source_package="curl", cvss_score=8.6),
        Finding("CVE-2023-38545", (), "curl", "7.88.1-10+deb12u5", "deb", "high", 1, fix_status="affected"),
        Finding("CVE-2024-25062", (), "libxml2", "2.9.14+dfsg-1.3~deb12u1", "deb", "medium", 1,
                fixed_version="2.9.14+dfsg-1.3~deb12u2", cvss_score=7.5),
        Finding("CVE-2023-45853", (), "zlib1g", "1:1.2.13.dfsg-1", "deb", "low", 0, source_package="zlib",
                fix_status="will_not_fix"),
        Finding("CVE-2010-4756", (), "libc6", "2.36-9+deb12u4", "deb", "unknown", 0, source_package="glibc",
                fix_status="will_not_fix"),
    ]
    db = Database(f"sqlite:///{data / 'dockyard.db'}")
    try:
        store = ScanStore(db, JobStore(db))
        store.start(digest)
        store.finish(digest, "done", repository=REPO, inventory=encode_inventory(inventory),
                     findings=encode_findings(findings, {finding_key(findings[1])}), summary=summarize(findings),
                     os_id="debian", os_version="12", db_id="e2e",
                     db_updated_at=datetime(2025, 3, 14, 6, 30, tzinfo=UTC))
    finally:
        db.dispose()


@pytest.mark.timeout(240)
def test_security_tab_in_english_and_chinese(browser: Any, security_server: ServerProcess) -> None:
    srv = security_server
    registry = Registry(srv.url, srv.user, srv.password)
    try:
        with browsing_on(browser, srv.url) as (_, page, watch):
            with screenshot_on_failure(page, "security"):
                _flow(page, watch, srv, registry)
            watch.assert_clean()
    finally:
        registry.close()


def _flow(page: Any, watch: PageWatch, srv: ServerProcess, registry: Registry) -> None:
    def shot(name: str) -> None:
        screenshot(page, name)
        watch.check_layout(page, name)

    log_in(page, srv.user, srv.password)

    # A namespace whose pushes are not scanned (the test writes the scan), with one allowlisted CVE.
    page.goto("/console/namespaces")
    form = page.locator("form").filter(has=page.get_by_test_id("namespace-create"))
    form.locator("input[name=name]").fill(NAMESPACE)
    form.get_by_test_id("namespace-create").click()
    page.wait_for_url(lambda url: path_of(url) == f"/console/namespaces/{NAMESPACE}")
    card = page.get_by_test_id("namespace-security")
    card.get_by_test_id("policy-scan-on-push").uncheck()
    card.get_by_test_id("policy-block-severity").select_option("critical")
    card.get_by_test_id("policy-save").click()
    expect(page.get_by_test_id("flash-ok")).to_contain_text("Security settings", timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("policy-scan-on-push")).not_to_be_checked(timeout=EXPECT_TIMEOUT_MS)
    card = page.get_by_test_id("namespace-security")
    card.get_by_test_id("allow-vulnerability").fill("CVE-2023-45853")
    card.get_by_test_id("allow-reason").fill("zlib's minizip is not used by the app")
    card.get_by_test_id("allow-add").click()
    expect(page.get_by_test_id("allow-row")).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    page.get_by_test_id("namespace-security").scroll_into_view_if_needed()
    shot("30-security-namespace")

    digest, layers = push_two_layer_image(registry)
    write_scan(srv.data, digest, layers)

    # The versions list: the tag's severity counts (the allowlisted low one not counted).
    page.goto(f"/console/repo/{REPO}/-/versions")
    row = page.locator(f'[data-testid="version-row"][data-tag="{TAG}"]')
    expect(row.get_by_test_id("version-vulns")).to_have_attribute("data-status", "done", timeout=EXPECT_TIMEOUT_MS)
    expect(row.get_by_test_id("vulns-critical")).to_contain_text("1", timeout=EXPECT_TIMEOUT_MS)
    expect(row.get_by_test_id("vulns-high")).to_contain_text("2", timeout=EXPECT_TIMEOUT_MS)
    expect(row.get_by_test_id("vulns-low")).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    shot("31-security-versions")

    # The version page's Security tab.
    row.get_by_test_id("version-link").click()
    page.wait_for_url(lambda url: path_of(url) == f"/console/repo/{REPO}/-/versions/{TAG}")
    expect(page.get_by_test_id("tab-version-security")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("vulns-critical")).to_contain_text("1", timeout=EXPECT_TIMEOUT_MS)
    shot("32-security-version")
    page.get_by_test_id("tab-version-security").click()
    page.wait_for_url(lambda url: path_of(url) == f"/console/repo/{REPO}/-/versions/{TAG}/security")
    rows = page.get_by_test_id("finding-row")
    expect(rows).to_have_count(6, timeout=EXPECT_TIMEOUT_MS)
    first = rows.first
    expect(first.get_by_test_id("finding-link")).to_have_attribute(
        "href", "https://nvd.nist.gov/vuln/detail/CVE-2024-5535", timeout=EXPECT_TIMEOUT_MS)
    expect(first.get_by_test_id("finding-versions")).to_contain_text("3.0.13-1~deb12u1", timeout=EXPECT_TIMEOUT_MS)
    expect(first.get_by_test_id("finding-command")).to_contain_text("apt-get install", timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator('[data-testid="finding-row"][data-id="CVE-2023-45853"]').get_by_test_id(
        "finding-allowlisted")).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("scan-os")).to_have_text("Debian GNU/Linux 12 (bookworm)", timeout=EXPECT_TIMEOUT_MS)
    shot("33-security-tab")

    # Filters (htmx swaps the results and keeps the address in step).
    page.get_by_test_id("filter-severity").select_option("high")
    page.wait_for_url(lambda url: "severity=high" in url)
    expect(rows).to_have_count(2, timeout=EXPECT_TIMEOUT_MS)
    page.get_by_test_id("filter-fixed").check()
    page.wait_for_url(lambda url: "fixed=1" in url)
    expect(rows).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(rows.first).to_have_attribute("data-id", "CVE-2024-2398", timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("export-csv")).to_have_attribute("href", f"/console/repo/{REPO}/-/versions/{TAG}"
                                                                 "/security.csv?severity=high&fixed=1",
                                                                 timeout=EXPECT_TIMEOUT_MS)
    page.goto(f"/console/repo/{REPO}/-/versions/{TAG}/security")
    page.get_by_test_id("filter-q").fill("libxml")
    expect(rows).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(rows.first).to_have_attribute("data-id", "CVE-2024-25062", timeout=EXPECT_TIMEOUT_MS)
    page.goto(f"/console/repo/{REPO}/-/versions/{TAG}/security")
    page.get_by_test_id("packages").locator("summary").click()
    expect(page.get_by_test_id("package-row")).to_have_count(5, timeout=EXPECT_TIMEOUT_MS)
    shot("34-security-tab-packages")

    # Simplified Chinese.
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=EXPECT_TIMEOUT_MS)
    page.wait_for_url(lambda url: path_of(url) == f"/console/repo/{REPO}/-/versions/{TAG}/security")
    expect(page.get_by_test_id("count-critical")).to_contain_text("严重", timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("tab-version-security")).to_have_text("安全扫描", timeout=EXPECT_TIMEOUT_MS)
    assert has_cjk(page.get_by_test_id("findings").locator("thead").inner_text())
    shot("35-security-tab-zh")
    page.goto(f"/console/repo/{REPO}/-/versions")
    expect(page.get_by_test_id("vulns-critical")).to_contain_text("严重", timeout=EXPECT_TIMEOUT_MS)
    shot("36-security-versions-zh")
    page.get_by_test_id("nav-security").click()
    page.wait_for_url(lambda url: path_of(url) == "/console/security")
    done = page.locator('[data-testid="scan-count"][data-status="done"]')
    expect(done).to_contain_text("已扫描", timeout=EXPECT_TIMEOUT_MS)
    expect(done).to_contain_text("1", timeout=EXPECT_TIMEOUT_MS)
    shot("37-security-admin-zh")

    # A phone-sized screen: the page does not scroll sideways (wide tables scroll in their box).
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in ((f"/console/repo/{REPO}/-/versions/{TAG}/security", "38-security-tab-narrow-zh"),
                       (f"/console/namespaces/{NAMESPACE}", "39-security-namespace-narrow-zh")):
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 391, f"{path} scrolls sideways at 390 px: {width}px wide"
        screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en", timeout=EXPECT_TIMEOUT_MS)
