"""Jobs as administrators see them (`/api/v1/jobs`, `dockyard jobs`, the console's Jobs page):
list, inspect and cancel background jobs, and ask for a garbage collection."""

from __future__ import annotations

from dockyard.management.base import Actor, _ServiceBase
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.meta.audit import AuditStore
from dockyard.meta.jobs import STATES, Job, JobStore

MAX_JOBS_PAGE = 500


class JobsService:
    def __init__(self, jobs: JobStore, audit: AuditStore, gc_kind: str) -> None:
        self.jobs = jobs
        self.audit = audit
        self.gc_kind = gc_kind  # the GC job's kind (jobs/kinds.py), also its unique key

    @staticmethod
    def _admin(actor: Actor, change: bool = False) -> None:
        _ServiceBase._authenticated(actor)
        if not actor.is_admin:
            raise Forbidden("administrators only")
        if change and actor.read_only:
            raise Forbidden("robot accounts, temporary passwords and registry passwords may only read; "
                            "sign in with the account password to change things")

    def list(self, actor: Actor, kind: str | None = None, state: str | None = None, before: int | None = None,
             limit: int = 100) -> tuple[list[Job], int | None]:
        """Newest first; the second item is the cursor of the next page (None on the last)."""
        self._admin(actor)
        if state is not None and state not in STATES:
            raise Invalid(f"state must be one of {', '.join(STATES)}")
        limit = max(1, min(limit, MAX_JOBS_PAGE))
        page = self.jobs.list(kind=kind, state=state, limit=limit + 1, before=before)
        more = len(page) > limit
        page = page[:limit]
        return page, page[-1].id if more else None

    def get(self, actor: Actor, job_id: int) -> Job:
        self._admin(actor)
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def cancel(self, actor: Actor, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one stops at its next check."""
        self._admin(actor, change=True)
        job = self.jobs.cancel(job_id, lambda conn, j: self.audit.add(
            conn, actor.name, "job.cancel", f"job:{job_id}", {"kind": j.kind, "state": j.state}, remote=actor.remote))
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def request_gc(self, actor: Actor, dry_run: bool, delete_untagged: bool | None = None) -> int:
        """Queue a garbage collection; when one is queued or running already, its id."""
        self._admin(actor, change=True)
        args: dict[str, object] = {"dry_run": dry_run}
        if delete_untagged is not None:
            args["delete_untagged"] = delete_untagged
        with self.jobs.db.write() as conn:  # the request and its record in one transaction
            job_id = self.jobs.enqueue(conn, self.gc_kind, args, unique_key=self.gc_kind, max_attempts=3)
            self.audit.add(conn, actor.name, "gc.request", f"job:{job_id}", args, remote=actor.remote)
        return job_id
