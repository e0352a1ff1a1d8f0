"""The audit log: who did what, to what, when and from where; and pull counts per tag."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dockyard.core.events import AUDIT_ACTIONS, Event
from dockyard.meta.db import Database, utcnow
from dockyard.meta.sql import insert_ignore
from dockyard.meta.tables import audit_events, repositories, tag_pulls


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any] | None
    remote: str | None


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None,
               remote: str | None = None) -> None:
        with self.db.write() as conn:
            self.add(conn, actor, action, target, detail, remote)

    @staticmethod
    def add(conn: Connection, actor: str, action: str, target: str, detail: dict[str, Any] | None = None,
            remote: str | None = None, at: datetime | None = None) -> None:
        """Record inside the caller's transaction (with the change it describes)."""
        conn.execute(audit_events.insert(), {"at": at or utcnow(), "actor": actor[:160], "action": action[:64],
                                             "target": target[:512], "remote": (remote or "")[:64] or None,
                                             "detail": json.dumps(detail) if detail else None})

    @classmethod
    def record_event(cls, conn: Connection, event: Event) -> None:
        """The audit log as a subscriber of events (meta/events.py): in the dispatcher's
        transaction, so each event is recorded exactly once."""
        action = AUDIT_ACTIONS.get(event.kind)
        if action:
            cls.add(conn, event.actor, action, event.target, event.detail or None, event.remote, event.created_at)

    def query(self, actor: str | None = None, action: str | None = None, target_prefix: str | None = None,
              since: datetime | None = None, before_id: int | None = None, limit: int = 100) -> list[AuditEvent]:
        """Newest first; page with `before_id`. `target_prefix` matches a namespace's events too."""
        q = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if actor:
            q = q.where(audit_events.c.actor == actor)
        if action:
            q = q.where(audit_events.c.action.startswith(action, autoescape=True))
        if target_prefix:
            q = q.where(audit_events.c.target.startswith(target_prefix, autoescape=True))
        if since:
            q = q.where(audit_events.c.at >= since)
        if before_id:
            q = q.where(audit_events.c.id < before_id)
        with self.db.read() as conn:
            return [AuditEvent(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target,
                               detail=json.loads(r.detail) if r.detail else None, remote=r.remote) for r in conn.execute(q)]

    def count_pulls(self, pulls: dict[tuple[str, str], int]) -> None:
        """Add buffered pull counts ((repository, tag) -> n) in one transaction."""
        if not pulls:
            return
        now = utcnow()
        with self.db.write() as conn:
            for (repository, tag), n in pulls.items():
                repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == repository)).scalar()
                if repo_id is None:
                    continue
                if not insert_ignore(conn, tag_pulls, {"repository_id": repo_id, "tag": tag, "pulls": n, "last_pulled_at": now}):
                    conn.execute(update(tag_pulls).where(tag_pulls.c.repository_id == repo_id, tag_pulls.c.tag == tag)
                                 .values(pulls=tag_pulls.c.pulls + n, last_pulled_at=now))

    def pulls(self, repository: str) -> dict[str, tuple[int, datetime]]:
        q = (select(tag_pulls.c.tag, tag_pulls.c.pulls, tag_pulls.c.last_pulled_at)
             .join(repositories, repositories.c.id == tag_pulls.c.repository_id).where(repositories.c.name == repository))
        with self.db.read() as conn:
            return {t: (n, at) for t, n, at in conn.execute(q)}
