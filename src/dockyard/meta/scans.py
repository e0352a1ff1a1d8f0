"""Scan state, results and inventories per manifest digest; scan policies and the allowlist per
namespace (meta/tables.py `scans`, `scan_policies`, `scan_allowlist`).

A scan row is shared by every repository holding the digest. Queueing a scan sets the row to
`queued` and keeps the previous results, so an image stays readable (and its policy decidable)
while it is scanned again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from dockyard.core.events import SCAN_FINISHED, SYSTEM, NewEvent, Origin
from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.events import EventStore
from dockyard.meta.jobs import JobStore
from dockyard.meta.namespaces import namespace_id
from dockyard.meta.sql import upsert
from dockyard.meta.tables import blobs, namespaces, scan_allowlist, scan_policies, scans

SCAN_IMAGE = "scan.image"  # the job kind that reads an image (jobs/kinds.py)
STATUSES = ("queued", "running", "done", "failed", "unsupported")


@dataclass(frozen=True, slots=True)
class ScanRow:
    digest: str
    status: str
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    scanned_at: datetime | None
    evaluated_at: datetime | None
    os_id: str | None
    os_version: str | None
    summary: dict[str, int] | None
    db_id: str | None
    db_updated_at: datetime | None
    notes: list[str]
    inventory: bytes | None = None  # only when asked for
    findings: bytes | None = None


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


_LIGHT = (scans.c.digest, scans.c.status, scans.c.error, scans.c.requested_at, scans.c.started_at, scans.c.scanned_at,
          scans.c.evaluated_at, scans.c.os_id, scans.c.os_version, scans.c.summary, scans.c.db_id,
          scans.c.db_updated_at, scans.c.notes)


def _scan(row: Any, heavy: bool = False) -> ScanRow:
    m = row._mapping
    return ScanRow(digest=m["digest"], status=m["status"], error=m["error"], requested_at=aware(m["requested_at"]),
                   started_at=_aware(m["started_at"]), scanned_at=_aware(m["scanned_at"]),
                   evaluated_at=_aware(m["evaluated_at"]), os_id=m["os_id"], os_version=m["os_version"],
                   summary=json.loads(m["summary"]) if m["summary"] else None, db_id=m["db_id"],
                   db_updated_at=_aware(m["db_updated_at"]), notes=json.loads(m["notes"]) if m["notes"] else [],
                   inventory=m["inventory"] if heavy else None, findings=m["findings"] if heavy else None)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A re-evaluation's result; `findings` None when they did not change."""

    digest: str
    scanned_at: datetime | None
    findings: bytes | None
    summary: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class Policy:
    scan_on_push: bool = True
    block_severity: str | None = None  # critical | high | medium | low
    block_unscanned: bool = False

    @property
    def blocks(self) -> bool:
        return self.block_severity is not None or self.block_unscanned


@dataclass(frozen=True, slots=True)
class Allowed:
    id: int
    namespace: str | None  # None: system-wide
    vulnerability: str
    reason: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


_POLICIES = select(namespaces.c.name, scan_policies).join(namespaces, namespaces.c.id == scan_policies.c.namespace_id)


def _policy(row: Any) -> Policy:
    return Policy(bool(row.scan_on_push), row.block_severity, bool(row.block_unscanned))


class ScanStore:
    def __init__(self, db: Database, jobs: JobStore) -> None:
        self.db = db
        self.jobs = jobs

    # -- queueing ------------------------------------------------------------------------------------
    def queue(self, conn: Connection, digest: str, repository: str | None, *, priority: int = 0,
              unless_known: bool = False) -> bool:
        """Queue a scan of `digest` inside the caller's transaction (one unfinished job per digest);
        False when the manifest is not stored (or, `unless_known`, when it has a scan already)."""
        if conn.execute(select(blobs.c.digest).where(blobs.c.digest == digest)).first() is None:
            return False
        if unless_known and conn.execute(select(scans.c.status).where(scans.c.digest == digest)).first() is not None:
            return False
        now = utcnow()
        upsert(conn, scans, {"digest": digest, "status": "queued", "requested_at": now}, ["digest"],
               ["status", "requested_at"])
        self.jobs.enqueue(conn, SCAN_IMAGE, {"digest": digest, "repository": repository},
                          unique_key=f"scan:{digest}", priority=priority, max_attempts=3)
        return True

    def request(self, digest: str, repository: str | None) -> bool:
        with self.db.write() as conn:
            return self.queue(conn, digest, repository, priority=1)

    # -- a scan's progress and results ---------------------------------------------------------------
    def start(self, digest: str) -> None:
        with self.db.write() as conn:
            now = utcnow()
            upsert(conn, scans, {"digest": digest, "status": "running", "requested_at": now, "started_at": now},
                   ["digest"], ["status", "started_at"])

    def finish(self, digest: str, status: str, *, repository: str | None = None, error: str | None = None,
               inventory: bytes | None = None, findings: bytes | None = None, summary: dict[str, int] | None = None,
               os_id: str | None = None, os_version: str | None = None, db_id: str | None = None,
               db_updated_at: datetime | None = None, notes: Iterable[str] = (), events: EventStore | None = None,
               origin: Origin = SYSTEM) -> None:
        """Record a scan's end; a `failed` or `unsupported` scan keeps no results. With `events`,
        a scan.finished event is written in the same transaction."""
        now = utcnow()
        values: dict[str, Any] = {"status": status, "error": error, "notes": json.dumps(list(notes)) or None}
        if status == "done":
            values.update(scanned_at=now, evaluated_at=now, inventory=inventory, findings=findings,
                          summary=json.dumps(summary), os_id=os_id, os_version=os_version, db_id=db_id,
                          db_updated_at=db_updated_at)
        else:
            values.update(scanned_at=now, evaluated_at=None, inventory=None, findings=None, summary=None,
                          os_id=None, os_version=None, db_id=None, db_updated_at=None)
        with self.db.write() as conn:
            changed = conn.execute(update(scans).where(scans.c.digest == digest).values(**values)).rowcount
            if changed and events is not None:
                target = f"{repository}@{digest}" if repository else digest
                events.add(conn, origin, [NewEvent(SCAN_FINISHED, repository, target,
                                                   {"digest": digest, "status": status, "summary": summary,
                                                    "error": error})])

    def evaluated_many(self, results: Iterable[Evaluated], db_id: str, db_updated_at: datetime | None) -> int:
        """Store re-evaluations in one transaction, each unless its image was scanned again
        meanwhile; returns how many were stored."""
        stored = 0
        now = utcnow()
        with self.db.write() as conn:
            for r in results:
                query = update(scans).where(scans.c.digest == r.digest, scans.c.inventory.is_not(None))
                if r.scanned_at is not None:
                    query = query.where(scans.c.scanned_at == r.scanned_at)
                values: dict[str, Any] = {"db_id": db_id, "db_updated_at": db_updated_at, "evaluated_at": now}
                if r.findings is not None:
                    values.update(findings=r.findings, summary=json.dumps(r.summary))
                stored += conn.execute(query.values(**values)).rowcount
        return stored

    # -- reading -------------------------------------------------------------------------------------
    def get(self, digest: str, heavy: bool = False) -> ScanRow | None:
        with self.db.read() as conn:
            row = conn.execute((select(scans) if heavy else select(*_LIGHT)).where(scans.c.digest == digest)).first()
        return None if row is None else _scan(row, heavy)

    def get_many(self, digests: Iterable[str]) -> dict[str, ScanRow]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, ScanRow] = {}
        with self.db.read() as conn:
            for i in range(0, len(wanted), 500):
                for row in conn.execute(select(*_LIGHT).where(scans.c.digest.in_(wanted[i:i + 500]))):
                    found[row.digest] = _scan(row)
        return found

    def findings_of(self, digests: Iterable[str]) -> dict[str, bytes | None]:
        wanted = list(dict.fromkeys(digests))
        with self.db.read() as conn:
            return {row.digest: row.findings for row in
                    conn.execute(select(scans.c.digest, scans.c.findings).where(scans.c.digest.in_(wanted)))}

    def stale(self, db_id: str, after: str = "", limit: int = 200) -> list[tuple[str, datetime | None, bytes, bytes | None]]:
        """Stored inventories not evaluated against advisory database `db_id`, by digest after
        `after`: (digest, scanned_at, inventory, findings)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(scans.c.digest, scans.c.scanned_at, scans.c.inventory, scans.c.findings)
                .where(scans.c.inventory.is_not(None), scans.c.digest > after,
                       or_(scans.c.db_id.is_(None), scans.c.db_id != db_id))
                .order_by(scans.c.digest).limit(limit)).all()
        return [(r.digest, r.scanned_at, r.inventory, r.findings) for r in rows]

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            return {row.status: int(row.n) for row in
                    conn.execute(select(scans.c.status, func.count().label("n")).group_by(scans.c.status))}

    # -- policies ------------------------------------------------------------------------------------
    def policy(self, namespace: str) -> Policy:
        with self.db.read() as conn:
            return self.policy_in(conn, namespace)

    def policies(self) -> dict[str, Policy]:
        """Every namespace with a policy row (for a cache of pull decisions)."""
        with self.db.read() as conn:
            return {row.name: _policy(row) for row in conn.execute(_POLICIES)}

    @staticmethod
    def policy_in(conn: Connection, namespace: str) -> Policy:
        row = conn.execute(_POLICIES.where(namespaces.c.name == namespace)).first()
        return Policy() if row is None else _policy(row)

    def set_policy(self, namespace: str, policy: Policy) -> bool:
        with self.db.write() as conn:
            ns_id = namespace_id(conn, namespace)
            if ns_id is None:
                return False
            upsert(conn, scan_policies, {"namespace_id": ns_id, "scan_on_push": policy.scan_on_push,
                                         "block_severity": policy.block_severity,
                                         "block_unscanned": policy.block_unscanned, "updated_at": utcnow()},
                   ["namespace_id"], ["scan_on_push", "block_severity", "block_unscanned", "updated_at"])
            return True

    # -- the allowlist -------------------------------------------------------------------------------
    def allowlist(self, namespace: str | None, *, system: bool = True) -> list[Allowed]:
        """Entries of `namespace` (and the system-wide ones with `system`); namespace None: only
        the system-wide ones. Expired entries included (the caller shows them as expired)."""
        query = select(scan_allowlist, namespaces.c.name).outerjoin(
            namespaces, namespaces.c.id == scan_allowlist.c.namespace_id)
        conds = []
        if namespace is not None:
            conds.append(namespaces.c.name == namespace)
        if system or namespace is None:
            conds.append(scan_allowlist.c.namespace_id.is_(None))
        with self.db.read() as conn:
            rows = conn.execute(query.where(or_(*conds)).order_by(scan_allowlist.c.vulnerability, scan_allowlist.c.id)).all()
        return [Allowed(id=r.id, namespace=r.name, vulnerability=r.vulnerability, reason=r.reason,
                        expires_at=_aware(r.expires_at), created_by=r.created_by, created_at=aware(r.created_at))
                for r in rows]

    def allow(self, namespace: str | None, vulnerability: str, reason: str, expires_at: datetime | None,
              created_by: str) -> Allowed | None:
        """Add (or replace: one entry per vulnerability and scope) an entry; None when the
        namespace does not exist."""
        with self.db.write() as conn:
            ns_id = None
            if namespace is not None:
                ns_id = namespace_id(conn, namespace)
                if ns_id is None:
                    return None
            scope = scan_allowlist.c.namespace_id.is_(None) if ns_id is None else scan_allowlist.c.namespace_id == ns_id
            conn.execute(delete(scan_allowlist).where(scope, scan_allowlist.c.vulnerability == vulnerability))
            now = utcnow()
            new_id = conn.execute(insert(scan_allowlist).values(
                namespace_id=ns_id, vulnerability=vulnerability, reason=reason, expires_at=expires_at,
                created_by=created_by, created_at=now).returning(scan_allowlist.c.id)).scalar_one()
        return Allowed(int(new_id), namespace, vulnerability, reason, expires_at, created_by, now)

    def disallow(self, entry_id: int, namespace: str | None) -> bool:
        """Remove an entry of that scope (None: system-wide)."""
        with self.db.write() as conn:
            if namespace is None:
                scope = scan_allowlist.c.namespace_id.is_(None)
            else:
                ns_id = namespace_id(conn, namespace)
                if ns_id is None:
                    return False
                scope = scan_allowlist.c.namespace_id == ns_id
            return bool(conn.execute(delete(scan_allowlist).where(and_(scan_allowlist.c.id == entry_id, scope))).rowcount)
