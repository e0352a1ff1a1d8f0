"""Upload sessions: which repository an upload belongs to and how many bytes it has committed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update

from dockyard.meta.db import Database, utcnow
from dockyard.meta.tables import upload_sessions


@dataclass(frozen=True, slots=True)
class UploadSession:
    id: str
    repository: str
    offset: int
    created_at: datetime
    updated_at: datetime
    store_state: dict[str, Any] | None = None  # the blob store's staging state
    hashed: str | None = None  # "sha256:<hex>" of the first `offset` bytes, when known


_GET = select(upload_sessions).where(upload_sessions.c.id == bindparam("id"))
_ADVANCE = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("sid"), upload_sessions.c.offset == bindparam("old"))  # "id" is reserved in UPDATE
    .values(offset=bindparam("new"), updated_at=bindparam("now"), store_state=bindparam("state"), hashed=bindparam("hashed"),
            claimed_until=None)
)
# A chunk's writer claims the session first, so that two requests at the same offset (a retry on
# another node while the first still runs) never both write staged data: the store may reuse
# names (S3 part numbers, a file's bytes past the offset) that the winner's state then points at.
_CLAIM = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("sid"), upload_sessions.c.offset == bindparam("old"),
           or_(upload_sessions.c.claimed_until.is_(None), upload_sessions.c.claimed_until < bindparam("now")))
    .values(claimed_until=bindparam("until"))
)
_RENEW = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("sid"), upload_sessions.c.offset == bindparam("old"),
           upload_sessions.c.claimed_until == bindparam("held"))
    .values(claimed_until=bindparam("until"))
)
_RELEASE = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("sid"), upload_sessions.c.claimed_until == bindparam("held"))
    .values(claimed_until=None)
)
_DELETE = delete(upload_sessions).where(upload_sessions.c.id == bindparam("id"))


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, upload_id: str, repository: str, state: dict[str, Any] | None = None) -> UploadSession:
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(upload_sessions.insert(),
                         {"id": upload_id, "repository": repository, "offset": 0, "created_at": now, "updated_at": now,
                          "store_state": _dump(state)})
        return UploadSession(upload_id, repository, 0, now, now, state)

    def get(self, upload_id: str) -> UploadSession | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": upload_id}).first()
        if row is None:
            return None
        m = row._mapping
        return UploadSession(m["id"], m["repository"], m["offset"], m["created_at"], m["updated_at"],
                             json.loads(m["store_state"]) if m["store_state"] else None, m["hashed"])

    def advance(self, upload_id: str, old_offset: int, new_offset: int, state: dict[str, Any] | None = None,
                hashed: str | None = None) -> bool:
        """Record appended bytes (and the store's new staging state, the digest so far), only if
        nobody else advanced the session meanwhile."""
        with self.db.write() as conn:
            res = conn.execute(_ADVANCE, {"sid": upload_id, "old": old_offset, "new": new_offset, "now": utcnow(),
                                          "state": _dump(state), "hashed": hashed})
            return res.rowcount == 1

    def claim(self, upload_id: str, offset: int, seconds: float) -> datetime | None:
        """Claim the session for one chunk at `offset`, for `seconds` (renew() extends it; advance()
        and release() end it). None when another request holds it, or the offset moved."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        with self.db.write() as conn:
            res = conn.execute(_CLAIM, {"sid": upload_id, "old": offset, "now": now, "until": until})
        return until if res.rowcount == 1 else None

    def renew(self, upload_id: str, offset: int, held: datetime, seconds: float) -> datetime | None:
        """Extend a claim still held; None when it was lost (it expired and another request took it)."""
        until = utcnow() + timedelta(seconds=seconds)
        with self.db.write() as conn:
            res = conn.execute(_RENEW, {"sid": upload_id, "old": offset, "held": held, "until": until})
        return until if res.rowcount == 1 else None

    def release(self, upload_id: str, held: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(_RELEASE, {"sid": upload_id, "held": held})

    def delete(self, upload_id: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(_DELETE, {"id": upload_id}).rowcount > 0

    def stale(self, before: datetime) -> list[tuple[str, dict[str, Any] | None]]:
        """(id, store state) of sessions last changed before `before`."""
        with self.db.read() as conn:
            rows = conn.execute(select(upload_sessions.c.id, upload_sessions.c.store_state)
                                .where(upload_sessions.c.updated_at < before)).all()
        return [(i, json.loads(s) if s else None) for i, s in rows]

    def all_ids(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(select(upload_sessions.c.id)).scalars())


def _dump(state: dict[str, Any] | None) -> str | None:
    return json.dumps(state, separators=(",", ":")) if state is not None else None
