"""Web console sessions: a random token in an HttpOnly cookie, its sha256 in the database.

A session row carries the CSRF token of its forms. Logging out, an expiry, disabling the user or
changing their account password ends it (`end_for_user`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from dockyard.meta.db import Database, aware, utcnow
from dockyard.meta.tables import console_sessions, users


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    username: str
    csrf: str
    expires_at: datetime


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, ttl_seconds: int, remote: str | None) -> tuple[str, ConsoleSession]:
        """Start a session; returns the cookie token (shown to nobody else) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + timedelta(seconds=ttl_seconds)
        with self.db.write() as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
            conn.execute(console_sessions.insert(), {"id": _key(token), "user_id": user_id, "csrf": csrf,
                                                     "created_at": now, "expires_at": expires, "remote": remote})
        return token, ConsoleSession(username, csrf, expires)

    def get(self, token: str) -> ConsoleSession | None:
        """The live session of a cookie token; None when unknown, expired or the user is disabled."""
        if not token or len(token) > 128:
            return None
        q = (select(users.c.username, users.c.disabled, console_sessions.c.csrf, console_sessions.c.expires_at)
             .join(users, users.c.id == console_sessions.c.user_id)
             .where(console_sessions.c.id == _key(token)))
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None or row.disabled or aware(row.expires_at) <= utcnow():
            return None
        return ConsoleSession(row.username, row.csrf, aware(row.expires_at))

    def end(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.id == _key(token)))

    def end_for_user(self, username: str) -> int:
        with self.db.write() as conn:
            user_id = select(users.c.id).where(users.c.username == username).scalar_subquery()
            return conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id)).rowcount

    def purge_expired(self) -> int:
        with self.db.write() as conn:
            return conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= utcnow())).rowcount
