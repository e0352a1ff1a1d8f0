"""The console's Jobs page in a real browser (Debian's chromium under Playwright) against a real
`dockyard serve`: an administrator starts a garbage collection there, watches the table refresh
itself while the job runs, and sees it end with its progress and result; a queued job is
cancelled from the page; the page in Simplified Chinese. Screenshots: test-artifacts/console/jobs-*.png.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from dockyard.meta.db import Database, utcnow
from dockyard.meta.jobs import JobStore
from dockyard.meta.tables import blobs
from tests.conftest import ServerProcess, free_port
from tests.e2e.browser import (
    log_in,
    skip_without_browser,
    EXPECT_TIMEOUT_MS,
    browsing_on,
    chromium_browser,
    has_cjk,
    path_of,
    screenshot,
    screenshot_on_failure,
)

pytestmark = pytest.mark.e2e

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

GARBAGE = 3000


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("console-jobs") / "data"
    proc = ServerProcess(data, free_port(), "e2e-" + uuid.uuid4().hex[:12],
                         env={"DOCKYARD_GC__GRACE_SECONDS": "0", "DOCKYARD_JOBS__POLL_SECONDS": "0.5"})
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


def database(server: ServerProcess) -> Database:
    return Database(f"sqlite:///{(server.data / 'dockyard.db').resolve()}")


def test_jobs_page_runs_gc_shows_progress_and_cancels(browser: Any, jobs_server: ServerProcess) -> None:
    db = database(jobs_server)
    old = utcnow() - timedelta(days=30)
    with db.write() as conn:  # blob rows nothing references (their bytes are not there: GC does not mind)
        conn.execute(insert(blobs), [{"digest": f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}", "size": 1 << 20,
                                      "created_at": old} for _ in range(GARBAGE)])
    jobs = JobStore(db)
    with browsing_on(browser, jobs_server.url) as (_context, page, watch), screenshot_on_failure(page, "jobs"):
        log_in(page, jobs_server.user, jobs_server.password)
        page.get_by_test_id("nav-jobs").click()
        page.wait_for_url(lambda url: path_of(url) == "/console/jobs")

        # Start a garbage collection; the page shows it queued or running, and refreshes itself.
        page.get_by_test_id("gc-start").click()
        page.wait_for_url(lambda url: path_of(url) == "/console/jobs")
        expect(page.get_by_test_id("flash-ok")).to_contain_text("Garbage collection queued as job", timeout=EXPECT_TIMEOUT_MS)
        row = page.locator("[data-testid=job-row][data-kind=gc]").first
        expect(row).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
        first_state = row.get_attribute("data-state")
        screenshot(page, "jobs-01-started")
        watch.check_layout(page, "jobs-01-started")
        # No reload from here on: htmx replaces the table every 2 s while a job is active.
        row = page.locator("[data-testid=job-row][data-kind=gc][data-state=succeeded]")
        expect(row).to_have_count(1, timeout=60_000)
        gc_job = jobs.list(kind="gc")[0]
        assert gc_job.state == "succeeded" and gc_job.result is not None and gc_job.result["blobs"] == GARBAGE
        expect(row.get_by_test_id("job-progress")).to_contain_text(f"{gc_job.progress_done} / {gc_job.progress_total}")
        expect(row).to_contain_text(f"blobs {GARBAGE}")
        expect(page.get_by_test_id("job-table")).to_have_attribute("data-active", "false", timeout=EXPECT_TIMEOUT_MS)
        assert first_state in ("queued", "running", "succeeded")
        screenshot(page, "jobs-02-finished")

        # A job waiting for later is cancelled from the page (after a confirm()).
        later = jobs.submit("uploads.purge", delay_seconds=3600)
        page.reload()
        waiting = page.locator(f"[data-testid=job-row][data-job='{later}']")
        expect(waiting).to_have_attribute("data-state", "queued", timeout=EXPECT_TIMEOUT_MS)
        page.once("dialog", lambda dialog: dialog.accept())
        waiting.get_by_test_id("job-cancel").click()
        expect(page.get_by_test_id("flash-ok")).to_contain_text(f"Job {later} cancelled.", timeout=EXPECT_TIMEOUT_MS)
        expect(page.locator(f"[data-testid=job-row][data-job='{later}']")).to_have_attribute("data-state", "cancelled")

        # Filters, then the page in Simplified Chinese.
        page.goto("/console/jobs?state=cancelled")
        expect(page.locator("[data-testid=job-row]")).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
        page.get_by_test_id("lang-switch").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=EXPECT_TIMEOUT_MS)
        page.goto("/console/jobs")
        heading = page.locator("h1").inner_text()
        assert has_cjk(heading), heading
        expect(page.locator("[data-testid=job-row][data-kind=gc]").first).to_contain_text("成功")
        screenshot(page, "jobs-03-zh-CN")
        watch.check_layout(page, "jobs-03-zh-CN")
        page.get_by_test_id("lang-switch").click()
        watch.assert_clean()
    db.dispose()
