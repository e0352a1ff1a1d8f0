"""The caller's own credentials (the fixed registry password for `docker login`, temporary
passwords) and a namespace's robot accounts, which its owners and administrators manage.

Secrets are returned once, when made; the stores keep only their hashes.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from dockyard.auth.passwords import hash_password_like
from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS
from dockyard.management.base import Actor, NewRobotSecret, NewTempPassword, _ServiceBase
from dockyard.management.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.meta.credentials import Robot, TempPassword
from dockyard.meta.db import aware, utcnow

MIN_TTL = 60
MAX_TTL = 366 * 86400
ROBOT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
MAX_PATTERN = 255


class CredentialUseCases(_ServiceBase):
    @staticmethod
    def _validate_actions(actions: Iterable[str]) -> list[str]:
        out = []
        for action in actions:
            if action not in ALL_REPOSITORY_ACTIONS:
                raise Invalid(f"unknown action {action!r}: use {', '.join(ALL_REPOSITORY_ACTIONS)}")
            if action not in out:
                out.append(action)
        if not out:
            raise Invalid("at least one action is needed")
        return out

    @staticmethod
    def _validate_pattern(pattern: str) -> str:
        if not pattern or len(pattern) > MAX_PATTERN or any(c.isspace() for c in pattern) or ".." in pattern:
            raise Invalid(f"invalid repository pattern {pattern[:100]!r}")
        return pattern

    # -- credentials of the caller ----------------------------------------------------------------
    def set_registry_password(self, actor: Actor, password: str | None) -> None:
        """Set (or, with None, remove) the caller's fixed password for `docker login`."""
        user = self._writer(actor)
        if password is not None:
            self._validate_password(password)
        # The account password's salt: one argon2 computation checks a password against both.
        self.credentials.set_registry_password(
            user.username, hash_password_like(password, user.password_hash) if password is not None else None)
        self.auth.forget_access()
        self._record(actor, "registry_password.set" if password is not None else "registry_password.remove",
                     f"user:{user.username}")

    def list_temp_passwords(self, actor: Actor) -> list[TempPassword]:
        self._authenticated(actor)
        if actor.user is None:
            raise Forbidden("robot accounts have no temporary passwords")
        return self.credentials.list_temp(actor.user.username)

    def create_temp_password(self, actor: Actor, ttl_seconds: int | None = None, description: str | None = None,
                             repositories: list[str] | None = None, actions: list[str] | None = None) -> NewTempPassword:
        user = self._writer(actor)
        ttl = self.temp_password_ttl if ttl_seconds is None else ttl_seconds
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise Invalid(f"ttl_seconds must be between {MIN_TTL} and {MAX_TTL}")
        if description is not None and len(description) > 255:
            raise Invalid("description has at most 255 characters")
        patterns = [self._validate_pattern(p) for p in repositories] if repositories else None
        acts = self._validate_actions(actions) if actions is not None else None
        temp_id = uuid.uuid4().hex
        password = f"dkt_{temp_id}_{secrets.token_urlsafe(32)}"
        temp = self.credentials.add_temp(temp_id, user.username, password, utcnow() + timedelta(seconds=ttl), description,
                                         patterns, acts)
        self._record(actor, "temp_password.create", f"user:{user.username}",
                     {"id": temp_id, "expires_at": aware(temp.expires_at).isoformat(), "repositories": patterns,
                      "actions": acts})
        return NewTempPassword(temp, password)

    def revoke_temp_password(self, actor: Actor, temp_id: str) -> TempPassword:
        user = self._writer(actor)
        temp = self.credentials.get_temp(temp_id) if temp_id.isalnum() and len(temp_id) <= 32 else None
        if temp is None or (temp.username != user.username and not user.is_admin):
            raise NotFound(f"temporary password {temp_id!r} not found")
        if temp.revoked_at is None:
            self.credentials.revoke_temp(temp_id)
            self.auth.forget_access()
            self._record(actor, "temp_password.revoke", f"user:{temp.username}", {"id": temp_id})
        found = self.credentials.get_temp(temp_id)
        assert found is not None
        return found

    # -- robots -----------------------------------------------------------------------------------
    def _robot_permissions(self, namespace: str, permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for perm in permissions:
            pattern = self._validate_pattern(str(perm.get("repositories") or ""))
            if "/" in pattern and not pattern.startswith(f"{namespace}/"):
                raise Invalid(f"pattern {pattern!r}: a pattern with '/' is a full name starting with '{namespace}/'; "
                              f"one without '/' is relative to {namespace!r}")
            out.append({"repositories": pattern, "actions": self._validate_actions(perm.get("actions") or [])})
        return out

    def _robot(self, namespace: str, name: str) -> Robot:
        robot = self.credentials.get_robot(namespace, name)
        if robot is None:
            raise NotFound(f"robot {name!r} not found in {namespace!r}")
        return robot

    def list_robots(self, actor: Actor, namespace: str) -> list[Robot]:
        self._require_owner(actor, namespace)
        return self.credentials.list_robots(namespace)

    def get_robot(self, actor: Actor, namespace: str, name: str) -> Robot:
        self._require_owner(actor, namespace)
        return self._robot(namespace, name)

    @staticmethod
    def _expiry(ttl_seconds: int | None, expires_at: datetime | None) -> datetime | None:
        if ttl_seconds is not None and expires_at is not None:
            raise Invalid("give ttl_seconds or expires_at, not both")
        if ttl_seconds is not None:
            if not MIN_TTL <= ttl_seconds <= 10 * MAX_TTL:
                raise Invalid(f"ttl_seconds must be between {MIN_TTL} and {10 * MAX_TTL}")
            return utcnow() + timedelta(seconds=ttl_seconds)
        if expires_at is not None:
            expires_at = aware(expires_at)
            if expires_at <= utcnow():
                raise Invalid("expires_at is in the past")
        return expires_at

    def create_robot(self, actor: Actor, namespace: str, name: str, permissions: list[dict[str, Any]],
                     description: str | None = None, ttl_seconds: int | None = None,
                     expires_at: datetime | None = None) -> NewRobotSecret:
        self._require_owner(actor, namespace)
        if not ROBOT_NAME_RE.fullmatch(name):
            raise Invalid(f"invalid robot name {name[:80]!r}: up to 64 lowercase letters, digits and . _ -")
        perms = self._robot_permissions(namespace, permissions)
        expiry = self._expiry(ttl_seconds, expires_at)
        if self.credentials.get_robot(namespace, name) is not None:
            raise Conflict(f"robot {name!r} exists already in {namespace!r}")
        secret = "dkr_" + secrets.token_urlsafe(32)
        try:
            robot = self.credentials.add_robot(namespace, name, secret, perms, description, expiry)
        except Exception:
            if self.credentials.get_robot(namespace, name) is not None:
                raise Conflict(f"robot {name!r} exists already in {namespace!r}") from None
            raise
        self.auth.forget_access()
        self._record(actor, "robot.create", robot.username, {"permissions": perms,
                                                            "expires_at": expiry.isoformat() if expiry else None})
        return NewRobotSecret(robot, secret)

    def update_robot(self, actor: Actor, namespace: str, name: str, **fields: Any) -> Robot:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        changes: dict[str, Any] = {}
        if "description" in fields:
            changes["description"] = fields["description"]
        if "disabled" in fields:
            if not isinstance(fields["disabled"], bool):
                raise Invalid("disabled must be true or false")
            changes["disabled"] = fields["disabled"]
        if "permissions" in fields:
            changes["permissions"] = self._robot_permissions(namespace, fields["permissions"] or [])
        if "expires_at" in fields:
            changes["expires_at"] = self._expiry(None, fields["expires_at"])
        if changes:
            self.credentials.update_robot(namespace, name, **changes)
            self.auth.forget_access()
            detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
            self._record(actor, "robot.update", robot.username, detail)
        return self._robot(namespace, name)

    def rotate_robot(self, actor: Actor, namespace: str, name: str) -> NewRobotSecret:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        secret = "dkr_" + secrets.token_urlsafe(32)
        self.credentials.update_robot(namespace, name, secret=secret)
        self.auth.forget_access()
        self._record(actor, "robot.rotate", robot.username)
        return NewRobotSecret(self._robot(namespace, name), secret)

    def delete_robot(self, actor: Actor, namespace: str, name: str) -> None:
        self._require_owner(actor, namespace)
        robot = self._robot(namespace, name)
        self.credentials.delete_robot(namespace, name)
        self.auth.forget_access()
        self._record(actor, "robot.delete", robot.username)
