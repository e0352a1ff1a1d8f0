"""`dockyard jobs list|show|cancel`: background jobs of a running registry (administrators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import clip, print_fields, print_item, print_list, print_updated, remote, when

if TYPE_CHECKING:
    from dockyard.client import Client

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def progress_text(job: Any) -> str:
    progress = job.get("progress")
    if not progress:
        return ""
    done, total = progress.get("done", 0), progress.get("total")
    return f"{done}/{total}" if total is not None else str(done)


def show_job(job: Any) -> None:
    print_fields([("id", job.get("id")), ("kind", job.get("kind")), ("state", job.get("state")),
                  ("progress", progress_text(job) or None), ("attempts", f"{job.get('attempts')}/{job.get('max_attempts')}"),
                  ("arguments", clip(job.get("args"), 200) if job.get("args") else None),
                  ("result", clip(job.get("result"), 200) if job.get("result") is not None else None),
                  ("error", job.get("error")), ("created", when(job.get("created_at"))),
                  ("started", when(job.get("started_at"))), ("finished", when(job.get("finished_at"))),
                  ("cancel requested", True if job.get("cancel_requested") else None)])


@click.group()
def jobs() -> None:
    """Background jobs: garbage collection, purges… (administrators)."""


@jobs.command("list")
@click.option("--kind", help="Only jobs of this kind, e.g. gc.")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many.")
@remote(json=True)
def jobs_list(api: Client, kind: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    print_list(api.jobs(kind=kind, state=state, limit=limit), as_json,
               ["ID", "KIND", "STATE", "PROGRESS", "ATTEMPTS", "CREATED", "FINISHED", "ERROR"],
               lambda j: [j.get("id"), j.get("kind"), j.get("state"), progress_text(j), j.get("attempts"),
                          when(j.get("created_at")), when(j.get("finished_at")), clip(j.get("error"), 50)],
               "no jobs")


@jobs.command("show")
@click.argument("job_id", type=int)
@remote(json=True)
def jobs_show(api: Client, job_id: int, as_json: bool) -> None:
    """Show one job: state, progress, attempts, result or last error."""
    print_item(api.job(job_id), as_json, show_job)


@jobs.command("cancel")
@click.argument("job_id", type=int)
@remote(json=True)
def jobs_cancel(api: Client, job_id: int, as_json: bool) -> None:
    """Cancel a job: a queued one at once, a running one at its next step."""
    job = api.cancel_job(job_id)
    done = "cancelled" if job.get("state") == "cancelled" else "asked to stop" if job.get("state") == "running" else \
        f"already {job.get('state')}"
    print_updated(job, as_json, f"job {job_id}: {done}", show_job)
