"""Upload sessions: which repository an upload belongs to and how many bytes it has committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update

from dockyard.meta.db import Database, utcnow
from dockyard.meta.tables import upload_sessions


@dataclass(frozen=True, slots=True)
class UploadSession:
    id: str
    repository: str
    offset: int
    created_at: datetime
    updated_at: datetime


_GET = select(upload_sessions).where(upload_sessions.c.id == bindparam("id"))
_ADVANCE = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("sid"), upload_sessions.c.offset == bindparam("old"))  # "id" is reserved in UPDATE
    .values(offset=bindparam("new"), updated_at=bindparam("now"))
)
_DELETE = delete(upload_sessions).where(upload_sessions.c.id == bindparam("id"))


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, upload_id: str, repository: str) -> UploadSession:
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(upload_sessions.insert(),
                         {"id": upload_id, "repository": repository, "offset": 0, "created_at": now, "updated_at": now})
        return UploadSession(upload_id, repository, 0, now, now)

    def get(self, upload_id: str) -> UploadSession | None:
        with self.db.read() as conn:
            row = conn.execute(_GET, {"id": upload_id}).first()
        return UploadSession(**row._mapping) if row else None

    def advance(self, upload_id: str, old_offset: int, new_offset: int) -> bool:
        """Record appended bytes, only if nobody else advanced the session meanwhile."""
        with self.db.write() as conn:
            res = conn.execute(_ADVANCE, {"sid": upload_id, "old": old_offset, "new": new_offset, "now": utcnow()})
            return res.rowcount == 1

    def delete(self, upload_id: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(_DELETE, {"id": upload_id}).rowcount > 0

    def stale(self, before: datetime) -> list[str]:
        with self.db.read() as conn:
            return list(conn.execute(select(upload_sessions.c.id).where(upload_sessions.c.updated_at < before)).scalars())

    def all_ids(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(select(upload_sessions.c.id)).scalars())
