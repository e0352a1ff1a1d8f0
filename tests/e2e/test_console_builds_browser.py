"""The console's Builds tab in a real browser (Debian's chromium under Playwright) against a real
`dockyard serve` (its embedded build worker, buildah) and a real git source (`git daemon` on
loopback, tests/git_server.py): configure builds through the form (GitHub, the git:// URL, rule
branch main -> latest; the webhook secret shown once), try the rule tester, send a GitHub-signed
push webhook to the URL the page shows, then "Build now" and watch the build's page follow its
log live (static/builds.js) until it succeeded; the tab in Simplified Chinese too. Screenshots go
to test-artifacts/console/ (50-… to 53-builds-*.png).

Run: .venv/bin/python -m pytest tests/e2e/test_console_builds_browser.py
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, free_port
from tests.e2e.browser import (
    log_in,
    skip_without_browser,
    EXPECT_TIMEOUT_MS,
    PageWatch,
    browsing_on,
    chromium_browser,
    has_cjk,
    path_of,
    screenshot,
    screenshot_on_failure,
)
from tests.git_server import GitServer, Repository, encode, github_headers, github_push

pytestmark = pytest.mark.e2e

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

REPO = "team/app"
TAB = f"/console/repo/{REPO}/-/builds"
DOCKERFILE = "FROM scratch\nCOPY hello.txt /hello.txt\n"
BUILD_TIMEOUT_MS = 120_000  # a build: clone, buildah, push


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def git_source(tmp_path: Path) -> Iterator[tuple[Repository, str]]:
    """A repository `app` served by `git daemon` with a Dockerfile on main; (it, main's commit)."""
    with GitServer(tmp_path) as server:
        repo = server.repository("app")
        commit = repo.commit({"Dockerfile": DOCKERFILE, "hello.txt": "hello from the console test\n"}, "first")
        repo.push("main")
        yield repo, commit


@pytest.fixture
def build_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"DOCKYARD_OUTBOUND__ALLOWED_NETWORKS": '["127.0.0.0/8"]', "DOCKYARD_SCAN__ENABLED": "false"}
    proc = ServerProcess(tmp_path / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12], env=env).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.timeout(420)
def test_builds_tab_configure_webhook_and_live_log(browser: Any, build_server: ServerProcess,
                                                     git_source: tuple[Repository, str]) -> None:
    srv = build_server
    with httpx.Client(base_url=srv.url + "/api/v1", auth=(srv.user, srv.password), timeout=30) as api:
        assert api.post("/namespaces", json={"name": "team"}).status_code == 201
        assert api.post("/repositories", json={"name": REPO}).status_code == 201
        with browsing_on(browser, srv.url) as (_, page, watch):
            with screenshot_on_failure(page, "builds"):
                _flow(page, watch, srv, api, *git_source)
            watch.assert_clean()


def _flow(page: Any, watch: PageWatch, srv: ServerProcess, api: httpx.Client, repo: Repository, commit: str) -> None:
    def shot(name: str) -> None:
        screenshot(page, name)
        watch.check_layout(page, name)

    log_in(page, srv.user, srv.password)

    # The tab, from the repository's overview; no configuration yet.
    page.goto(f"/console/repo/{REPO}")
    page.get_by_test_id("tab-builds").click()
    page.wait_for_url(lambda url: path_of(url) == TAB)
    expect(page.get_by_test_id("build-rule-row")).to_have_count(3, timeout=EXPECT_TIMEOUT_MS)

    # Configure: GitHub, the git:// source, rule branch main -> latest.
    form = page.get_by_test_id("build-config-form")
    form.get_by_test_id("build-provider").select_option("github")
    form.get_by_test_id("build-url").fill(repo.url)
    first_rule = form.get_by_test_id("build-rule-row").first
    first_rule.get_by_test_id("rule-kind").select_option("branch")
    first_rule.get_by_test_id("rule-match").fill("main")
    first_rule.get_by_test_id("rule-tags").fill("latest")
    form.get_by_test_id("build-timeout").fill("600")
    form.get_by_test_id("build-config-save").click()
    expect(page.get_by_test_id("flash-ok")).to_contain_text("Build configuration saved", timeout=EXPECT_TIMEOUT_MS)
    secret = page.get_by_test_id("build-webhook-secret").inner_text().strip()
    hook_url = page.get_by_test_id("build-webhook-url").inner_text().strip()
    assert secret.startswith("dkh_") and hook_url == f"{srv.url}/api/v1/repositories/{REPO}/build-hook"
    page.get_by_test_id("copy-build-webhook-secret").click()
    expect(page.get_by_test_id("copy-build-webhook-secret")).to_have_attribute("data-copied-state", "yes",
                                                                               timeout=EXPECT_TIMEOUT_MS)
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.get_by_test_id("rule-match").first).to_have_value("main", timeout=EXPECT_TIMEOUT_MS)
    shot("50-builds-config")

    # Shown once: the next visit masks it.
    page.goto(TAB)
    expect(page.get_by_test_id("build-webhook-secret-masked")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    assert secret not in page.content()

    # The rule tester.
    tester = page.get_by_test_id("rule-test-form")
    tester.get_by_test_id("rule-test-kind").select_option("branch")
    tester.get_by_test_id("rule-test-name").fill("main")
    tester.get_by_test_id("rule-test-run").click()
    expect(page.get_by_test_id("rule-test-tags")).to_have_text(["latest"], timeout=EXPECT_TIMEOUT_MS)
    tester = page.get_by_test_id("rule-test-form")
    tester.get_by_test_id("rule-test-name").fill("feature/x")
    tester.get_by_test_id("rule-test-run").click()
    expect(page.get_by_test_id("rule-test-tags")).to_have_text(["does not match"], timeout=EXPECT_TIMEOUT_MS)

    # A GitHub-signed push to the URL the page showed starts a build, listed in the history.
    body = encode(github_push("refs/heads/main", commit))
    answer = httpx.post(hook_url, content=body, headers=github_headers(secret, body), timeout=30)
    assert answer.status_code == 202, answer.text
    (hook_build,) = answer.json()["builds"]
    page.goto(TAB)
    row = page.locator(f'[data-testid="build-row"][data-id="{hook_build}"]')
    expect(row).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(row.get_by_test_id("build-tags")).to_have_text("latest", timeout=EXPECT_TIMEOUT_MS)
    _wait_done(api, hook_build)

    # Build now: the answer is the build's page, which follows the log live until the end.
    page.goto(TAB)
    page.get_by_test_id("build-now-ref").fill("main")
    page.get_by_test_id("build-now").click()
    page.wait_for_url(lambda url: path_of(url).startswith(f"{TAB}/") and path_of(url) != f"{TAB}/run")
    build_id = int(path_of(page.url).rsplit("/", 1)[1])
    assert build_id != hook_build
    badge = page.locator("h2 [data-testid=build-status]")
    first_status = badge.get_attribute("data-status")
    first_log = page.get_by_test_id("build-log").inner_text()
    assert first_status in ("queued", "running"), first_status  # else there is nothing to follow
    expect(page.get_by_test_id("build-log")).to_contain_text("COPY hello.txt", timeout=BUILD_TIMEOUT_MS)
    expect(badge).to_have_attribute("data-status", "succeeded", timeout=BUILD_TIMEOUT_MS)
    expect(badge).to_have_text("succeeded", timeout=EXPECT_TIMEOUT_MS)
    grown = page.get_by_test_id("build-log").inner_text()
    assert len(grown) > len(first_log) and grown.startswith(first_log.rstrip("\n")[:200])
    assert "team/app:latest" in grown, grown[-2000:]
    served = api.get(f"/builds/{build_id}/log").text  # the page holds the whole log, once
    assert grown.strip() == served.strip()
    expect(page.get_by_test_id("build-log-live")).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    # The summary came again with the end (no reload): the digest, linking to the image version; no cancel.
    expect(page.get_by_test_id("build-digest")).to_contain_text("sha256:", timeout=EXPECT_TIMEOUT_MS)
    expect(page.get_by_test_id("build-cancel")).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    assert page.get_by_test_id("build-log").inner_text() == grown  # the log stays as it was
    shot("51-build-live-log")
    page.get_by_test_id("build-digest").click()
    page.wait_for_url(lambda url: "/-/versions/sha256" in path_of(url))
    expect(page.get_by_test_id("detail-digest")).to_contain_text("sha256:", timeout=EXPECT_TIMEOUT_MS)

    # In Simplified Chinese.
    page.goto(TAB)
    page.get_by_test_id("lang-switch").click()
    page.wait_for_url(lambda url: path_of(url) == TAB)
    expect(page.get_by_test_id("tab-builds")).to_have_text("构建", timeout=EXPECT_TIMEOUT_MS)
    expect(page.locator(f'[data-testid="build-row"][data-id="{build_id}"]').get_by_test_id("build-status")).to_have_text(
        "成功", timeout=EXPECT_TIMEOUT_MS)
    assert has_cjk(page.get_by_test_id("build-config").inner_text())
    shot("52-builds-zh-CN")


def _wait_done(api: httpx.Client, build_id: int) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + BUILD_TIMEOUT_MS / 1000
    while True:
        build = api.get(f"/builds/{build_id}").json()
        if build["status"] not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert build["status"] == "succeeded", api.get(f"/builds/{build_id}/log").text[-3000:]
    return dict(build)
