"""Credentials for `docker login` besides the account password: the fixed registry password,
temporary passwords and robot accounts.

Temporary passwords and robot secrets are 256-bit random strings, so they are stored as sha256
(a slow hash adds nothing against guessing a random 256-bit value) and compared in constant
time. The fixed registry password is chosen by a person and gets argon2id like any password.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.meta.db import Database, utcnow
from dockyard.meta.tables import namespaces, robots, temp_passwords, users


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TempPassword:
    id: str
    username: str
    description: str | None
    repositories: list[str] | None
    actions: list[str] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    secret_hash: str


@dataclass(frozen=True, slots=True)
class Robot:
    id: int
    namespace: str
    name: str
    description: str | None
    permissions: list[dict[str, Any]]  # [{"repositories": "app-*", "actions": ["pull", "push"]}]
    disabled: bool
    created_at: datetime
    expires_at: datetime | None
    rotated_at: datetime | None
    last_used_at: datetime | None
    secret_hash: str

    @property
    def username(self) -> str:
        return f"robot${self.namespace}+{self.name}"


def _temp(row: Any) -> TempPassword:
    m = row._mapping
    return TempPassword(id=m["id"], username=m["username"], description=m["description"],
                        repositories=json.loads(m["repositories"]) if m["repositories"] else None,
                        actions=m["actions"].split(",") if m["actions"] else None, created_at=m["created_at"],
                        expires_at=m["expires_at"], revoked_at=m["revoked_at"], last_used_at=m["last_used_at"],
                        secret_hash=m["secret_hash"])


def _robot(row: Any) -> Robot:
    m = row._mapping
    return Robot(id=m["id"], namespace=m["namespace"], name=m["name"], description=m["description"],
                 permissions=json.loads(m["permissions"]), disabled=m["disabled"], created_at=m["created_at"],
                 expires_at=m["expires_at"], rotated_at=m["rotated_at"], last_used_at=m["last_used_at"],
                 secret_hash=m["secret_hash"])


_TEMP_SELECT = select(temp_passwords, users.c.username).join(users, users.c.id == temp_passwords.c.user_id)
_ROBOT_SELECT = select(robots, namespaces.c.name.label("namespace")).join(namespaces, namespaces.c.id == robots.c.namespace_id)


class CredentialStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- fixed registry password ----------------------------------------------------------------
    def set_registry_password(self, username: str, password_hash: str | None) -> bool:
        with self.db.write() as conn:
            return conn.execute(update(users).where(users.c.username == username)
                                .values(registry_password_hash=password_hash)).rowcount > 0

    # -- temporary passwords ----------------------------------------------------------------------
    def add_temp(self, id: str, username: str, secret: str, expires_at: datetime, description: str | None,
                 repositories: list[str] | None, actions: list[str] | None) -> TempPassword:
        with self.db.write() as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
            conn.execute(temp_passwords.insert(), {
                "id": id, "user_id": user_id, "secret_hash": secret_hash(secret), "description": description,
                "repositories": json.dumps(repositories) if repositories else None,
                "actions": ",".join(actions) if actions else None, "created_at": utcnow(), "expires_at": expires_at})
        found = self.get_temp(id)
        assert found is not None
        return found

    def get_temp(self, id: str) -> TempPassword | None:
        with self.db.read() as conn:
            row = conn.execute(_TEMP_SELECT.where(temp_passwords.c.id == id)).first()
        return _temp(row) if row else None

    def list_temp(self, username: str) -> list[TempPassword]:
        with self.db.read() as conn:
            rows = conn.execute(_TEMP_SELECT.where(users.c.username == username).order_by(temp_passwords.c.created_at))
            return [_temp(r) for r in rows]

    def revoke_temp(self, id: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(update(temp_passwords).where(temp_passwords.c.id == id, temp_passwords.c.revoked_at.is_(None))
                                .values(revoked_at=utcnow())).rowcount > 0

    def add_robot(self, namespace: str, name: str, secret: str, permissions: list[dict[str, Any]],
                  description: str | None, expires_at: datetime | None) -> Robot:
        with self.db.write() as conn:
            ns_id = conn.execute(select(namespaces.c.id).where(namespaces.c.name == namespace)).scalar_one()
            conn.execute(robots.insert(), {"namespace_id": ns_id, "name": name, "secret_hash": secret_hash(secret),
                                           "permissions": json.dumps(permissions), "description": description,
                                           "disabled": False, "created_at": utcnow(), "expires_at": expires_at})
        found = self.get_robot(namespace, name)
        assert found is not None
        return found

    def get_robot(self, namespace: str, name: str) -> Robot | None:
        with self.db.read() as conn:
            row = conn.execute(_ROBOT_SELECT.where(namespaces.c.name == namespace, robots.c.name == name)).first()
        return _robot(row) if row else None

    def list_robots(self, namespace: str) -> list[Robot]:
        with self.db.read() as conn:
            return [_robot(r) for r in conn.execute(_ROBOT_SELECT.where(namespaces.c.name == namespace).order_by(robots.c.name))]

    def update_robot(self, namespace: str, name: str, **fields: Any) -> bool:
        values = {k: v for k, v in fields.items() if k in ("description", "disabled", "expires_at", "permissions")}
        if "permissions" in values:
            values["permissions"] = json.dumps(values["permissions"])
        if "secret" in fields:
            values["secret_hash"] = secret_hash(fields["secret"])
            values["rotated_at"] = utcnow()
        robot = self.get_robot(namespace, name)
        if robot is None:
            return False
        with self.db.write() as conn:
            conn.execute(update(robots).where(robots.c.id == robot.id).values(**values))
        return True

    def delete_robot(self, namespace: str, name: str) -> bool:
        robot = self.get_robot(namespace, name)
        if robot is None:
            return False
        with self.db.write() as conn:
            return conn.execute(delete(robots).where(robots.c.id == robot.id)).rowcount > 0
