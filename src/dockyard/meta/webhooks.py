"""Webhooks, their deliveries and every delivery attempt (meta/tables.py `webhooks`,
`webhook_deliveries`, `webhook_attempts`).

A delivery is made in the event dispatcher's transaction (`add_delivery`, with its job), or by a
ping; its job (`webhook.deliver`, one unfinished per delivery) makes attempts until one succeeds or
the job's attempts run out. Each attempt is a row, written after the request, with the delivery's
new status, in one transaction: the HTTP request itself never holds a database transaction open.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from dockyard.core.access import is_public
from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.jobs import JobStore
from dockyard.meta.namespaces import namespace_id
from dockyard.meta.tables import namespaces, repositories, webhook_attempts, webhook_deliveries, webhooks

WEBHOOK_DELIVER = "webhook.deliver"  # the job kind that makes a delivery's attempts (jobs/kinds.py)
STATUSES = ("pending", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    namespace: str
    repository: str | None  # a name or glob in the namespace; None: every repository of it
    url: str
    events: tuple[str, ...]
    format: str
    enabled: bool
    description: str | None
    sealed_secret: str  # core/secretbox.py; opened only to sign
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    attempted_at: datetime
    request_headers: dict[str, str]
    response_status: int | None
    response_headers: list[tuple[str, str]]
    response_body: str | None
    response_truncated: bool
    duration_ms: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: int
    event: str
    event_id: int | None
    body: str
    status: str
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    log: list[Attempt] = field(default_factory=list)  # filled by `deliveries`


_last_ms = [0]
_ids_lock = threading.Lock()


def new_delivery_id() -> str:
    """msg_ + milliseconds (12 hex) + 80 random bits: unique, and in the order they were made,
    also within one millisecond of one process (the stamp moves on by one instead: a dispatcher
    makes several deliveries in the same millisecond, and the random part would order them by chance)."""
    with _ids_lock:
        ms = max(int(time.time() * 1000), _last_ms[0] + 1)
        _last_ms[0] = ms
    return f"msg_{ms:012x}{secrets.token_hex(10)}"


_COLUMNS = (webhooks, namespaces.c.name.label("namespace_name"))


def _webhook(row: Any) -> Webhook:
    m = row._mapping
    return Webhook(id=m["id"], namespace=m["namespace_name"], repository=m["repository"], url=m["url"],
                   events=tuple(json.loads(m["events"])), format=m["format"], enabled=bool(m["enabled"]),
                   description=m["description"], sealed_secret=m["secret"], created_by=m["created_by"],
                   created_at=aware(m["created_at"]), updated_at=aware(m["updated_at"]))


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(id=m["id"], webhook_id=m["webhook_id"], event=m["event"], event_id=m["event_id"], body=m["body"],
                    status=m["status"], attempts=m["attempts"], created_at=aware(m["created_at"]),
                    last_attempt_at=aware(m["last_attempt_at"]) if m["last_attempt_at"] else None)


def _attempt(row: Any) -> Attempt:
    m = row._mapping
    return Attempt(id=m["id"], attempted_at=aware(m["attempted_at"]), request_headers=json.loads(m["request_headers"]),
                   response_status=m["response_status"],
                   response_headers=[tuple(h) for h in json.loads(m["response_headers"] or "[]")],  # type: ignore[misc]
                   response_body=m["response_body"], response_truncated=bool(m["response_truncated"]),
                   duration_ms=m["duration_ms"], error=m["error"])


def _joined() -> Any:
    return select(*_COLUMNS).join(namespaces, namespaces.c.id == webhooks.c.namespace_id)


class WebhookStore:
    def __init__(self, db: Database, jobs: JobStore) -> None:
        self.db = db
        self.jobs = jobs

    # -- webhooks ------------------------------------------------------------------------------------
    def create(self, namespace: str, *, repository: str | None, url: str, events: list[str], format: str,
               enabled: bool, description: str | None, sealed_secret: str, created_by: str) -> Webhook | None:
        """None when the namespace does not exist."""
        with self.db.write() as conn:
            ns_id = namespace_id(conn, namespace)
            if ns_id is None:
                return None
            now = utcnow()
            new_id = conn.execute(insert(webhooks).values(
                namespace_id=ns_id, repository=repository, url=url, events=json.dumps(events), format=format,
                enabled=enabled, description=description, secret=sealed_secret, created_by=created_by[:160],
                created_at=now, updated_at=now).returning(webhooks.c.id)).scalar_one()
            return _webhook(conn.execute(_joined().where(webhooks.c.id == new_id)).one())

    def get(self, namespace: str | None, webhook_id: int) -> Webhook | None:
        """The webhook with this id (in `namespace` when given)."""
        query = _joined().where(webhooks.c.id == webhook_id)
        if namespace is not None:
            query = query.where(namespaces.c.name == namespace)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return _webhook(row) if row is not None else None

    def list(self, namespace: str) -> list[Webhook]:
        with self.db.read() as conn:
            return [_webhook(r) for r in conn.execute(_joined().where(namespaces.c.name == namespace)
                                                      .order_by(webhooks.c.id))]

    def count(self, namespace: str) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(webhooks).join(
                namespaces, namespaces.c.id == webhooks.c.namespace_id).where(namespaces.c.name == namespace)).scalar_one())

    def update(self, namespace: str, webhook_id: int, **fields: Any) -> Webhook | None:
        """Change the given columns (repository, url, events, format, enabled, description,
        sealed_secret); None when there is no such webhook."""
        values = {k: v for k, v in fields.items() if k in ("repository", "url", "format", "enabled", "description")}
        if "events" in fields:
            values["events"] = json.dumps(list(fields["events"]))
        if "sealed_secret" in fields:
            values["secret"] = fields["sealed_secret"]
        with self.db.write() as conn:
            ns_id = select(namespaces.c.id).where(namespaces.c.name == namespace).scalar_subquery()
            changed = conn.execute(update(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.namespace_id == ns_id)
                                   .values(**values, updated_at=utcnow())).rowcount
            if not changed:
                return None
            return _webhook(conn.execute(_joined().where(webhooks.c.id == webhook_id)).one())

    def delete(self, namespace: str, webhook_id: int) -> bool:
        """Its deliveries and attempts go with it; their queued jobs find nothing and end."""
        with self.db.write() as conn:
            ns_id = select(namespaces.c.id).where(namespaces.c.name == namespace).scalar_subquery()
            return bool(conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id,
                                                            webhooks.c.namespace_id == ns_id)).rowcount)

    @staticmethod
    def enabled_in(conn: Connection, namespace: str) -> list[Webhook]:
        """The namespace's enabled webhooks, inside the caller's transaction (the dispatcher's)."""
        return [_webhook(r) for r in conn.execute(_joined().where(namespaces.c.name == namespace,
                                                                  webhooks.c.enabled.is_(True)).order_by(webhooks.c.id))]

    @staticmethod
    def repository_facts(conn: Connection, repository: str, namespace: str) -> tuple[bool, datetime | None]:
        """(is it private, when was it created) for Docker Hub's payload."""
        repo = conn.execute(select(repositories.c.visibility, repositories.c.created_at)
                            .where(repositories.c.name == repository)).first()
        ns_public = conn.execute(select(namespaces.c.public).where(namespaces.c.name == namespace)).scalar()
        public = is_public(repo.visibility if repo else None, bool(ns_public))
        return not public, aware(repo.created_at) if repo else None

    # -- deliveries ----------------------------------------------------------------------------------
    def add_delivery(self, conn: Connection, webhook_id: int, delivery_id: str, event: str, event_id: int | None,
                     body: bytes, *, max_attempts: int, manual: bool = False) -> None:
        """A pending delivery and its job, inside the caller's transaction. `manual`: asked for by
        someone (a ping), so it is attempted even while the webhook is disabled."""
        conn.execute(insert(webhook_deliveries).values(
            id=delivery_id, webhook_id=webhook_id, event=event, event_id=event_id, body=body.decode(),
            status="pending", attempts=0, created_at=utcnow()))
        args: dict[str, Any] = {"delivery": delivery_id, **({"manual": True} if manual else {})}
        self.jobs.enqueue(conn, WEBHOOK_DELIVER, args, unique_key=f"webhook:{delivery_id}", max_attempts=max_attempts,
                          priority=1 if manual else 0)

    def create_delivery(self, webhook_id: int, event: str, body_of: Any, *, max_attempts: int) -> str:
        """A delivery asked for by someone (a ping), in a transaction of its own; `body_of(delivery_id)`
        makes its body."""
        delivery_id = new_delivery_id()
        with self.db.write() as conn:
            self.add_delivery(conn, webhook_id, delivery_id, event, None, body_of(delivery_id),
                              max_attempts=max_attempts, manual=True)
        return delivery_id

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self.db.read() as conn:
            row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def record_attempt(self, delivery_id: str, *, request_headers: dict[str, str], response_status: int | None,
                       response_headers: list[tuple[str, str]] | None, response_body: str | None, truncated: bool,
                       duration_ms: int, error: str | None, status: str) -> bool:
        """Add an attempt and set the delivery's status; False when the delivery is gone."""
        with self.db.write() as conn:
            now = utcnow()
            if not conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(
                    status=status, attempts=webhook_deliveries.c.attempts + 1, last_attempt_at=now)).rowcount:
                return False
            conn.execute(insert(webhook_attempts).values(
                delivery_id=delivery_id, attempted_at=now, request_headers=json.dumps(request_headers),
                response_status=response_status,
                response_headers=json.dumps(response_headers) if response_headers is not None else None,
                response_body=response_body, response_truncated=truncated, duration_ms=duration_ms,
                error=error[:4000] if error else None))
            return True

    def set_status(self, delivery_id: str, status: str) -> None:
        with self.db.write() as conn:
            conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(status=status))

    def redeliver(self, webhook_id: int, delivery_id: str) -> Delivery | None:
        """One more attempt of the delivery, now (pending again); None when there is no such one.
        A delivery still waiting for a retry has that retry moved to now instead (one job per
        delivery); one being attempted right now is left to that attempt."""
        with self.db.write() as conn:
            if not conn.execute(update(webhook_deliveries).where(
                    webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.webhook_id == webhook_id)
                    .values(status="pending")).rowcount:
                return None
            key = f"webhook:{delivery_id}"
            if not self.jobs.hasten(conn, key):
                self.jobs.enqueue(conn, WEBHOOK_DELIVER, {"delivery": delivery_id, "manual": True}, unique_key=key,
                                  max_attempts=1, priority=1)
            return _delivery(conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)).one())

    def deliveries(self, webhook_id: int, before: str | None = None, limit: int = 20,
                   only: str | None = None) -> list[Delivery]:
        """Newest first, each with its attempts (oldest first); `before`: ids smaller than it;
        `only`: just that delivery."""
        query = (select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
                 .order_by(webhook_deliveries.c.id.desc()).limit(limit))
        if before is not None:
            query = query.where(webhook_deliveries.c.id < before)
        if only is not None:
            query = query.where(webhook_deliveries.c.id == only)
        with self.db.read() as conn:
            found = [_delivery(r) for r in conn.execute(query)]
            log: dict[str, list[Attempt]] = {d.id: [] for d in found}
            if found:
                for row in conn.execute(select(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(list(log)))
                                        .order_by(webhook_attempts.c.id)):
                    log[row.delivery_id].append(_attempt(row))
        return [replace(d, log=log[d.id]) for d in found]

    def purge(self, older_than_seconds: float) -> int:
        """Forget finished deliveries (and their attempts) made more than that long ago."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self.db.write() as conn:
            return int(conn.execute(delete(webhook_deliveries).where(
                webhook_deliveries.c.created_at < cutoff, webhook_deliveries.c.status != "pending")).rowcount)
