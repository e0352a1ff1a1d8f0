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


class LastAdministrator(Exception):
    """A change that would leave no active administrator."""


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

    def update(self, username: str, *, password_hash: str | None = None, disabled: bool | None = None,
               is_admin: bool | None = None) -> User | None:
        """Change a user in one transaction (None leaves a field as it is); None when there is no
        such user. Raises LastAdministrator, changing nothing, when the change would leave no
        active administrator.

        The check and the change are one step: the rows of the active administrators are locked
        first (in id order, so two demotions cannot deadlock), and a concurrent demotion waits for
        this one and then counts again (PostgreSQL re-reads locked rows that changed; SQLite has a
        single writer anyway)."""
        with self.db.write() as conn:
            if disabled is True or is_admin is False:
                active = set(conn.execute(
                    select(users.c.id).where(users.c.is_admin.is_(True), users.c.disabled.is_(False))
                    .order_by(users.c.id).with_for_update(key_share=True)).scalars())
            else:
                active = set()
            row = conn.execute(select(users).where(users.c.username == username)).first()
            if row is None:
                return None
            if row.id in active and len(active) <= 1:
                raise LastAdministrator(username)
            values: dict[str, object] = {}
            if password_hash is not None:
                values["password_hash"] = password_hash
            if disabled is not None:
                values["disabled"] = disabled
            if is_admin is not None:
                values["is_admin"] = is_admin
            if values:
                conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return self.get(username)

    def set_disabled(self, username: str, disabled: bool) -> bool:
        with self.db.write() as conn:
            return conn.execute(update(users).where(users.c.username == username).values(disabled=disabled)).rowcount > 0

    def list(self) -> list[User]:
        with self.db.read() as conn:
            return [User(**r._mapping) for r in conn.execute(select(users).order_by(users.c.username))]
