"""Jobs (administrators only): background jobs with their state, progress, attempts and last
error; start a garbage collection, cancel a job. The table refreshes itself (htmx) while a job is
queued or running."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.management.jobs import JobsService
from dockyard.meta.jobs import STATES
from dockyard.web.framework import Console, Ctx, url

PAGE = 50
KINDS = ("gc", "uploads.purge", "sessions.purge", "images.backfill", "scan.image", "scan.reevaluate")


class JobViews:
    def __init__(self, console: Console, jobs: JobsService) -> None:
        self.c = console
        self.jobs = jobs

    def index(self, ctx: Ctx) -> Response:
        kind = ctx.arg("kind") if ctx.arg("kind") in KINDS else None
        state = ctx.arg("state") if ctx.arg("state") in STATES else None
        before = ctx.arg("before")
        page, nxt = self.jobs.list(ctx.actor, kind, state, int(before) if before.isdigit() and len(before) <= 18 else None, PAGE)
        active = any(j.state in ("queued", "running") for j in page)
        values = {"jobs": page, "next": nxt, "kind": kind or "", "state": state or "", "kinds": KINDS, "states": STATES,
                  "active": active}
        if ctx.htmx and ctx.request.headers.get("hx-target") == "job-table":
            return self.c.render(ctx, "_jobs_table.html", **values)
        return self.c.render(ctx, "jobs.html", **values)

    def gc(self, ctx: Ctx) -> Response:
        dry_run = ctx.field("dry_run") == "on"
        job_id = self.jobs.request_gc(ctx.actor, dry_run)
        ctx.flash("ok", ctx._("Garbage collection queued as job %(id)s.", id=job_id))
        return self.c.redirect(url("/jobs"))

    def cancel(self, ctx: Ctx) -> Response:
        raw = ctx.request.path_params["id"]
        job = self.jobs.cancel(ctx.actor, int(raw) if raw.isdigit() and len(raw) <= 18 else 0)
        if job.state == "cancelled":
            ctx.flash("ok", ctx._("Job %(id)s cancelled.", id=job.id))
        else:
            ctx.flash("ok", ctx._("Job %(id)s was asked to stop.", id=job.id))
        return self.c.redirect(url("/jobs"))
