"""A user's account and registry passwords share one salt, whichever is set first or changed
later, so that a login attempt checks both with one argon2 computation (auth.passwords.verify_any)."""

from __future__ import annotations

from typing import Any

from dockyard.auth import passwords
from dockyard.auth.passwords import argon2_salt, hash_password
from dockyard.auth.policy import Principal
from dockyard.management.service import Actor


def test_the_two_passwords_of_a_user_keep_one_salt(services: Any, monkeypatch: Any) -> None:
    services.users.create("ann", hash_password("first-account-pw"))
    mgmt = services.management
    ann = Actor(Principal(user=services.users.get("ann"), account_login=True), "10.0.0.1")
    admin = Actor(Principal(user=services.users.get("admin"), account_login=True), "10.0.0.1")

    mgmt.set_registry_password(ann, "a-registry-password")
    user = services.users.get("ann")
    assert argon2_salt(user.registry_password_hash) == argon2_salt(user.password_hash)
    mgmt.update_user(admin, "ann", password="second-account-pw")
    user = services.users.get("ann")
    assert argon2_salt(user.registry_password_hash) == argon2_salt(user.password_hash)

    computations: list[int] = []
    real = passwords._raw
    monkeypatch.setattr(passwords, "_raw", lambda *a: computations.append(1) or real(*a))
    for password, account in (("second-account-pw", True), ("a-registry-password", False)):
        principal = services.auth.check_password("ann", password)
        assert principal is not None and principal.account_login is account
    assert services.auth.check_password("ann", "wrong") is None
    assert services.auth.check_password("ann", "first-account-pw") is None
    assert len(computations) == 4  # one per check
