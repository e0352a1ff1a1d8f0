"""Build configurations, builds and their logs (meta/tables.py `build_configs`, `builds`,
`build_log_chunks`, `build_hook_deliveries`).

A build is queued with its job in one transaction (`queue`), so a build row never waits for a job
that was not written. Its worker appends the log in chunks as it arrives (`append_log`: any node
reads it live) and records the end with its event (`finish`, the event in the same transaction).
A build whose job ended without it ending (the worker died during its last attempt) is failed by
`reconcile`, run by every worker now and then: no build stays "running" for ever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from dockyard.core.events import NewEvent, Origin
from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.events import EventStore
from dockyard.meta.jobs import FINISHED, JobStore
from dockyard.meta.namespaces import namespace_id
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import build_configs, build_hook_deliveries, build_log_chunks, builds, jobs

BUILD_RUN = "build.run"  # the job kind that runs a build (with worker labels: "build.run@k=v,…")
BUILD_POLL = "build.poll"  # the job kind that polls plain git sources
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
DONE = ("succeeded", "failed", "cancelled")
CHUNK = 32 * 1024  # characters per log row at most


@dataclass(frozen=True, slots=True)
class BuildConfig:
    id: int
    repository: str
    provider: str
    url: str
    sealed_token: str | None
    sealed_ssh_key: str | None
    sealed_webhook_secret: str
    rules: list[dict[str, Any]]
    auto_build: bool
    timeout_seconds: int | None
    cancel_superseded: bool
    poll_interval_seconds: int | None
    poll_state: dict[str, str] | None  # None: never polled (the first poll only records the refs)
    polled_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Build:
    id: int
    repository: str
    rule: int | None
    ref: str
    revision: str | None
    tags: list[str]
    spec: dict[str, Any]
    status: str
    trigger: str
    triggered_by: str
    job_id: int | None
    worker: str | None
    digest: str | None
    error: str | None
    log_size: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _config(row: Any) -> BuildConfig:
    m = row._mapping
    return BuildConfig(
        id=m["id"], repository=m["repository"], provider=m["provider"], url=m["url"], sealed_token=m["token"],
        sealed_ssh_key=m["ssh_key"], sealed_webhook_secret=m["webhook_secret"], rules=json.loads(m["rules"]),
        auto_build=bool(m["auto_build"]), timeout_seconds=m["timeout_seconds"], cancel_superseded=bool(m["cancel_superseded"]),
        poll_interval_seconds=m["poll_interval_seconds"], poll_state=json.loads(m["poll_state"]) if m["poll_state"] is not None else None,
        polled_at=aware(m["polled_at"]) if m["polled_at"] else None, created_by=m["created_by"],
        created_at=aware(m["created_at"]), updated_at=aware(m["updated_at"]))


def _build(row: Any) -> Build:
    m = row._mapping
    return Build(
        id=m["id"], repository=m["repository"], rule=m["rule"], ref=m["ref"], revision=m["revision"],
        tags=json.loads(m["tags"]), spec=json.loads(m["spec"]), status=m["status"], trigger=m["trigger"],
        triggered_by=m["triggered_by"], job_id=m["job_id"], worker=m["worker"], digest=m["digest"], error=m["error"],
        log_size=int(m["log_size"]), created_at=aware(m["created_at"]),
        started_at=aware(m["started_at"]) if m["started_at"] else None,
        finished_at=aware(m["finished_at"]) if m["finished_at"] else None)


@dataclass(frozen=True, slots=True)
class NewBuild:
    repository: str
    rule: int | None
    ref: str
    revision: str | None
    tags: list[str]
    spec: dict[str, Any]
    trigger: str
    triggered_by: str
    job_kind: str
    supersede: bool = False  # cancel queued builds of the same repository, rule and ref


class BuildStore:
    def __init__(self, db: Database, jobs: JobStore) -> None:
        self.db = db
        self.jobs = jobs

    # -- configurations ---------------------------------------------------------------------------
    def put_config(self, namespace: str, repository: str, values: dict[str, Any], created_by: str) -> BuildConfig | None:
        """Create or replace the repository's configuration (None: no such namespace). `values`:
        provider, url, token, ssh_key, webhook_secret (sealed), rules (list), auto_build,
        timeout_seconds, cancel_superseded, poll_interval_seconds."""
        row = {**values, "rules": json.dumps(values["rules"])}
        with self.db.write() as conn:
            ns_id = namespace_id(conn, namespace)
            if ns_id is None:
                return None
            now = utcnow()
            before = conn.execute(select(build_configs.c.url).where(build_configs.c.repository == repository)).scalar()
            if before is not None and before != values["url"]:
                row.update(poll_state=None, polled_at=None)  # another source: its refs are new to polling
            if conn.execute(update(build_configs).where(build_configs.c.repository == repository)
                            .values(**row, updated_at=now)).rowcount == 0:
                conn.execute(insert(build_configs).values(**row, namespace_id=ns_id, repository=repository,
                                                          created_by=created_by[:160], created_at=now, updated_at=now))
            return _config(conn.execute(select(build_configs).where(build_configs.c.repository == repository)).one())

    def config(self, repository: str) -> BuildConfig | None:
        with self.db.read() as conn:
            row = conn.execute(select(build_configs).where(build_configs.c.repository == repository)).first()
        return _config(row) if row is not None else None

    def delete_config(self, repository: str) -> bool:
        with self.db.write() as conn:
            return bool(conn.execute(delete(build_configs).where(build_configs.c.repository == repository)).rowcount)

    def polled(self) -> list[BuildConfig]:
        """Configurations with polling on."""
        with self.db.read() as conn:
            return [_config(r) for r in conn.execute(select(build_configs).where(
                build_configs.c.poll_interval_seconds.is_not(None), build_configs.c.auto_build.is_(True)))]

    def set_poll_state(self, config_id: int, state: dict[str, str] | None) -> None:
        with self.db.write() as conn:
            conn.execute(update(build_configs).where(build_configs.c.id == config_id).values(
                poll_state=json.dumps(state) if state is not None else None, polled_at=utcnow()))

    def first_delivery(self, config_id: int, delivery_id: str) -> bool:
        """Record a provider's delivery id; False when it was seen before (a replay)."""
        with self.db.write() as conn:
            return insert_ignore(conn, build_hook_deliveries, {"config_id": config_id, "delivery_id": delivery_id[:200],
                                                               "received_at": utcnow()})

    # -- builds -----------------------------------------------------------------------------------
    def queue(self, new: NewBuild, max_attempts: int = 2) -> Build:
        """The build and its job, in one transaction; with `supersede`, queued builds of the same
        rule and ref are cancelled (with their jobs) in it."""
        with self.db.write() as conn:
            ns_id = namespace_id(conn, new.repository.split("/", 1)[0])
            assert ns_id is not None, "queue builds of repositories whose namespace exists"
            now = self.jobs.now(conn)
            if new.supersede:
                self._supersede(conn, new, now)
            build_id = int(conn.execute(insert(builds).values(
                namespace_id=ns_id, repository=new.repository, rule=new.rule, ref=new.ref, revision=new.revision,
                tags=json.dumps(new.tags), spec=json.dumps(new.spec), status="queued", trigger=new.trigger,
                triggered_by=new.triggered_by[:160], log_size=0, created_at=now).returning(builds.c.id)).scalar_one())
            job_id = self.jobs.enqueue(conn, new.job_kind, {"build": build_id}, unique_key=f"build:{build_id}",
                                       max_attempts=max_attempts)
            conn.execute(update(builds).where(builds.c.id == build_id).values(job_id=job_id))
            return _build(conn.execute(select(builds).where(builds.c.id == build_id)).one())

    def _supersede(self, conn: Connection, new: NewBuild, now: datetime) -> None:
        older = conn.execute(select(builds.c.id, builds.c.job_id).where(
            builds.c.repository == new.repository, builds.c.rule == new.rule, builds.c.ref == new.ref,
            builds.c.status == "queued")).all()
        for build_id, job_id in older:
            conn.execute(update(builds).where(builds.c.id == build_id, builds.c.status == "queued").values(
                status="cancelled", error="superseded by a newer push", finished_at=now))
            if job_id is not None:
                conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued").values(
                    state="cancelled", finished_at=now, unique_key=None))

    def get(self, build_id: int) -> Build | None:
        with self.db.read() as conn:
            row = conn.execute(select(builds).where(builds.c.id == build_id)).first()
        return _build(row) if row is not None else None

    def list(self, repository: str, limit: int = 50, before: int | None = None) -> list[Build]:
        """Newest first."""
        query = select(builds).where(builds.c.repository == repository).order_by(builds.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(builds.c.id < before)
        with self.db.read() as conn:
            return [_build(r) for r in conn.execute(query)]

    def start(self, build_id: int, worker: str, attempt: int) -> Build | None:
        """The build is running on `worker` (None: it is gone or finished). A second attempt (the
        first one's worker died) starts its log again after a note."""
        with self.db.write() as conn:
            now = self.jobs.now(conn)
            changed = conn.execute(update(builds).where(builds.c.id == build_id, builds.c.status.in_(("queued", "running")))
                                   .values(status="running", worker=worker[:64], started_at=now, error=None)).rowcount
            if not changed:
                return None
            if attempt > 1:
                conn.execute(delete(build_log_chunks).where(build_log_chunks.c.build_id == build_id))
                conn.execute(update(builds).where(builds.c.id == build_id).values(log_size=0))
            return _build(conn.execute(select(builds).where(builds.c.id == build_id)).one())

    def set_revision(self, build_id: int, revision: str) -> None:
        with self.db.write() as conn:
            conn.execute(update(builds).where(builds.c.id == build_id).values(revision=revision[:64]))

    def append_log(self, build_id: int, text: str) -> int:
        """Add text to the build's log; returns the log's new size."""
        with self.db.write() as conn:
            size = int(conn.execute(select(builds.c.log_size).where(builds.c.id == build_id)).scalar() or 0)
            for i in range(0, len(text), CHUNK):
                part = text[i:i + CHUNK]
                conn.execute(insert(build_log_chunks).values(build_id=build_id, start=size, text=part))
                size += len(part)
            conn.execute(update(builds).where(builds.c.id == build_id).values(log_size=size))
            return size

    def log(self, build_id: int, offset: int = 0) -> tuple[str, int]:
        """The log from character `offset` on, and the log's size."""
        with self.db.read() as conn:
            size = int(conn.execute(select(builds.c.log_size).where(builds.c.id == build_id)).scalar() or 0)
            rows = conn.execute(select(build_log_chunks.c.start, build_log_chunks.c.text).where(
                build_log_chunks.c.build_id == build_id, build_log_chunks.c.start > offset - CHUNK)
                .order_by(build_log_chunks.c.start)).all()
        text = "".join(t[max(0, offset - start):] for start, t in rows if start + len(t) > offset)
        return text, size

    def finish(self, build_id: int, status: str, *, digest: str | None = None, error: str | None = None,
               event: NewEvent | None = None, events: EventStore | None = None) -> Build | None:
        """Record the end (None when it had ended already), with its event in the same transaction."""
        with self.db.write() as conn:
            now = self.jobs.now(conn)
            changed = conn.execute(update(builds).where(builds.c.id == build_id, builds.c.status.not_in(DONE)).values(
                status=status, digest=digest, error=error[:4000] if error else None, finished_at=now)).rowcount
            if not changed:
                return None
            if event is not None and events is not None:
                events.add(conn, Origin(actor="dockyard-builder"), [event])
            return _build(conn.execute(select(builds).where(builds.c.id == build_id)).one())

    def cancel_requested(self, job_id: int) -> bool:
        with self.db.read() as conn:
            return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar())

    def requeue(self, build_id: int) -> None:
        """The worker stopped before the build ended: queued again (its job is handed back)."""
        with self.db.write() as conn:
            conn.execute(update(builds).where(builds.c.id == build_id, builds.c.status == "running")
                         .values(status="queued", worker=None))

    def stranded(self) -> list[tuple[Build, str]]:
        """Builds not ended whose job has ended (failed, cancelled…) or is gone, with the job's
        state ("gone" for none): BuildService.fail_stranded ends them."""
        with self.db.read() as conn:
            rows = conn.execute(select(builds, func.coalesce(jobs.c.state, "gone").label("job_state"))
                                .outerjoin(jobs, jobs.c.id == builds.c.job_id).where(
                builds.c.status.in_(("queued", "running")),
                and_(builds.c.job_id.is_not(None), func.coalesce(jobs.c.state, "gone").in_((*FINISHED, "gone"))))).all()
        return [(_build(r), str(r.job_state)) for r in rows]

    def purge_deliveries(self, older_than_seconds: float) -> int:
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self.db.write() as conn:
            return int(conn.execute(delete(build_hook_deliveries).where(build_hook_deliveries.c.received_at < cutoff)).rowcount)

    def purge(self, older_than_seconds: float) -> int:
        """Forget finished builds older than that, with their logs (`builds.retention_days`)."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self.db.write() as conn:
            old = select(builds.c.id).where(builds.c.status.in_(DONE), builds.c.finished_at < cutoff).scalar_subquery()
            conn.execute(delete(build_log_chunks).where(build_log_chunks.c.build_id.in_(old)))
            return int(conn.execute(delete(builds).where(builds.c.status.in_(DONE), builds.c.finished_at < cutoff)).rowcount)
