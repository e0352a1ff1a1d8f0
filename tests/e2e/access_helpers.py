"""Helpers for the access-control end-to-end tests (tests/e2e/test_access_e2e.py).

Namespaces, members, robots and temporary passwords are written straight into the stores of a
running `dockyard serve` (its SQLite database under the data directory). The real clients and
the test images come from tests/e2e/clients.py.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dockyard.app import Services, build_services
from dockyard.auth.passwords import hash_password
from dockyard.config import load_settings
from tests.conftest import ServerProcess
from tests.e2e.clients import ClientEnv as Clients  # noqa: F401  (the browser tests' client state)
from tests.e2e.clients import client_env as private_clients  # noqa: F401

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # what e2e tests keep for a human to look at


@contextlib.contextmanager
def stores(server: ServerProcess) -> Iterator[Services]:
    """The server's stores, through a second connection to its database."""
    svc = build_services(load_settings(data_dir=server.data))
    try:
        yield svc
    finally:
        svc.db.dispose()


def create_namespace(server: ServerProcess, name: str, public: bool = False, auto_create: bool = True) -> None:
    with stores(server) as svc:
        svc.namespaces.create(name, f"e2e namespace {name}", public=public, auto_create=auto_create)


def create_user(server: ServerProcess, name: str, namespace: str | None = None, role: str | None = None) -> str:
    """A non-admin user (optionally a member of `namespace`); returns its account password."""
    password = "pw-" + secrets.token_urlsafe(16)
    with stores(server) as svc:
        svc.users.create(name, hash_password(password))
        if namespace is not None and role is not None:
            assert svc.namespaces.set_member(namespace, name, role)
    return password


def create_robot(server: ServerProcess, namespace: str, name: str, permissions: list[dict[str, Any]],
                 expires_at: datetime | None = None) -> tuple[str, str]:
    """Returns (login name, secret)."""
    secret = "dkr_" + secrets.token_urlsafe(32)
    with stores(server) as svc:
        robot = svc.credentials.add_robot(namespace, name, secret, permissions, "e2e robot", expires_at)
    return robot.username, secret


def disable_robot(server: ServerProcess, namespace: str, name: str) -> None:
    with stores(server) as svc:
        assert svc.credentials.update_robot(namespace, name, disabled=True)


def create_temp(server: ServerProcess, username: str, expires_in: timedelta = timedelta(hours=1),
                repositories: list[str] | None = None, actions: list[str] | None = None) -> tuple[str, str]:
    """A temporary password of `username`; returns (id, password)."""
    temp_id = uuid.uuid4().hex
    password = f"dkt_{temp_id}_{secrets.token_urlsafe(32)}"
    with stores(server) as svc:
        svc.credentials.add_temp(temp_id, username, password, datetime.now(UTC) + expires_in, "e2e",
                                 repositories, actions)
    return temp_id, password


def revoke_temp(server: ServerProcess, temp_id: str) -> None:
    with stores(server) as svc:
        assert svc.credentials.revoke_temp(temp_id)
