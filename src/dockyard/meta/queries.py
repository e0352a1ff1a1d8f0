"""Reads of the management use-cases that cut across the other stores: one repository by name,
a page of tags with their digests, and the audit log as a non-admin sees it."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import false, or_, select

from dockyard.core.access import namespace_of
from dockyard.meta.audit import AuditEvent
from dockyard.meta.db import Database
from dockyard.meta.namespaces import Repository, repository_of
from dockyard.meta.tables import audit_events, namespaces, repositories, tags


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ManagementQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def repository(self, name: str) -> Repository | None:
        with self.db.read() as conn:
            row = conn.execute(select(repositories).where(repositories.c.name == name)).first()
            if row is None:
                return None
            ns_public = conn.execute(select(namespaces.c.public).where(namespaces.c.name == namespace_of(name))).scalar()
        return repository_of(row, bool(ns_public))

    def tags(self, repository: str, after: str | None, limit: int) -> list[tuple[str, str, datetime]] | None:
        """(tag, digest, updated_at) in name order after `after`; None when the repository does not exist."""
        with self.db.read() as conn:
            repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == repository)).scalar()
            if repo_id is None:
                return None
            q = (select(tags.c.name, tags.c.manifest_digest, tags.c.updated_at)
                 .where(tags.c.repository_id == repo_id).order_by(tags.c.name).limit(limit))
            if after:
                q = q.where(tags.c.name > after)
            return [(n, d, at) for n, d, at in conn.execute(q)]

    def audit(self, *, actor: str | None, action: str | None, target: str | None, before_id: int | None, limit: int,
              visible_to: tuple[str, set[str]] | None = None) -> list[AuditEvent]:
        """Newest first. `target` matches a prefix (a namespace matches its repositories).
        `visible_to=(username, owned namespaces)` keeps the caller's own events and those whose
        target lies in one of the namespaces."""
        q = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if actor:
            q = q.where(audit_events.c.actor == actor)
        if action:
            q = q.where(audit_events.c.action.like(_like_prefix(action), escape="\\"))
        if target:
            q = q.where(audit_events.c.target.like(_like_prefix(target), escape="\\"))
        if before_id:
            q = q.where(audit_events.c.id < before_id)
        if visible_to is not None:
            username, owned = visible_to
            conds = [audit_events.c.actor == username]
            for ns in sorted(owned):
                conds += [audit_events.c.target == ns,
                          audit_events.c.target.like(_like_prefix(f"{ns}/"), escape="\\"),
                          audit_events.c.target.like(_like_prefix(f"robot${ns}+"), escape="\\")]
            q = q.where(or_(*conds) if conds else false())
        with self.db.read() as conn:
            return [AuditEvent(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target,
                               detail=json.loads(r.detail) if r.detail else None, remote=r.remote)
                    for r in conn.execute(q)]

