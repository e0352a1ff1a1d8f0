"""Users (the base of access control; roles and namespaces build on it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from dockyard.meta.db import Database, utcnow
from dockyard.meta.tables import users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    registry_password_hash: str | None = None


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, username: str) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return User(**row._mapping) if row else None

    def count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def create(self, username: str, password_hash: str, is_admin: bool = False) -> User:
        with self.db.write() as conn:
            conn.execute(
                users.insert().values(
                    username=username, password_hash=password_hash, is_admin=is_admin, disabled=False, created_at=utcnow()
                )
            )
        user = self.get(username)
        assert user is not None
        return user

    def set_password(self, username: str, password_hash: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(update(users).where(users.c.username == username).values(password_hash=password_hash)).rowcount > 0

    def set_disabled(self, username: str, disabled: bool) -> bool:
        with self.db.write() as conn:
            return conn.execute(update(users).where(users.c.username == username).values(disabled=disabled)).rowcount > 0

    def list(self) -> list[User]:
        with self.db.read() as conn:
            return [User(**r._mapping) for r in conn.execute(select(users).order_by(users.c.username))]
