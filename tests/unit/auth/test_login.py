"""AuthService.login without a database: the throttle's atomic reservation and the cost of a
wrong password (one argon2 verification whoever the user is)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.auth import passwords
from dockyard.auth.passwords import hash_password, hash_password_like
from dockyard.auth.service import AuthService
from dockyard.core.errors import TooManyRequests
from dockyard.meta.users import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Users:
    def __init__(self, *users: User) -> None:
        self.by_name = {u.username: u for u in users}

    def get(self, username: str) -> User | None:
        return self.by_name.get(username)


def auth(*users: User, account_password_for_registry: bool = True) -> AuthService:
    return AuthService(Users(*users), None, None, None, account_password_for_registry)  # type: ignore[arg-type]


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts argon2 computations (each slowed a little, so that parallel guesses overlap)."""
    calls: list[str] = []
    lock = threading.Lock()
    real_raw, real_verify = passwords._raw, passwords.verify_password

    def raw(*args: Any) -> bytes:
        with lock:
            calls.append("raw")
        time.sleep(0.05)
        return real_raw(*args)

    def verify(*args: Any) -> bool:
        with lock:
            calls.append("verify")
        time.sleep(0.05)
        return real_verify(*args)

    monkeypatch.setattr(passwords, "_raw", raw)
    monkeypatch.setattr(passwords, "verify_password", verify)
    return calls


def test_parallel_wrong_guesses_reach_the_password_check_at_most_five_times(argon2_calls: list[int]) -> None:
    service = auth(User(1, "admin", hash_password("right"), True, False, NOW))

    def guess(i: int) -> str:
        try:
            return "ok" if service.login("admin", f"wrong-{i}", "192.0.2.7") else "refused"
        except TooManyRequests:
            return "throttled"

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    assert len(argon2_calls) <= 5
    assert outcomes.count("refused") == len(argon2_calls)
    assert outcomes.count("throttled") == 30 - len(argon2_calls)


def test_a_strangers_failures_do_not_lock_the_owner_out() -> None:
    service = auth(User(1, "admin", hash_password("right"), True, False, NOW))
    for i in range(100):
        try:
            assert service.login("admin", f"wrong-{i}", "192.0.2.7") is None
        except TooManyRequests:
            pass
    with pytest.raises(TooManyRequests):
        service.login("admin", "right", "192.0.2.7")  # the guesser learns nothing
    assert service.login("admin", "right", "198.51.100.1") is not None  # the owner, elsewhere
    # and the guesser's address is slowed for every account once it has failed often enough
    outcomes = []
    for i in range(40):
        try:
            outcomes.append(service.login(f"user{i}", "x", "192.0.2.8"))
        except TooManyRequests:
            outcomes.append("throttled")
    assert outcomes[:30] == [None] * 30 and outcomes[30:] == ["throttled"] * 10


def test_ipv6_clients_are_counted_per_64() -> None:
    service = auth(User(1, "admin", hash_password("right"), True, False, NOW))
    for i in range(5):
        assert service.login("admin", "wrong", f"2001:db8:1:2::{i + 1:x}") is None
    with pytest.raises(TooManyRequests):
        service.login("admin", "wrong", "2001:db8:1:2:ffff::1")
    assert service.login("admin", "right", "2001:db8:1:3::1") is not None


@pytest.mark.parametrize("account_password_for_registry", [True, False])
@pytest.mark.parametrize("who", ["unknown", "account only", "with registry password"])
def test_a_wrong_password_costs_one_argon2_verification(argon2_calls: list[int], who: str,
                                                         account_password_for_registry: bool) -> None:
    account = hash_password("account-pw")
    registry = hash_password_like("registry-pw", account)
    users = [] if who == "unknown" else [
        User(1, "ann", account, False, False, NOW, registry if who != "account only" else None)]
    service = auth(*users, account_password_for_registry=account_password_for_registry)
    assert service.login("ann", "wrong", "192.0.2.1") is None
    assert service.check_account_password("ann", "wrong") is None
    assert len(argon2_calls) == 2  # one per check


def test_both_passwords_still_work_and_say_which_matched() -> None:
    account = hash_password("account-pw")
    ann = User(1, "ann", account, False, False, NOW, hash_password_like("registry-pw", account))
    service = auth(ann)
    by_account = service.check_password("ann", "account-pw")
    by_registry = service.check_password("ann", "registry-pw")
    assert by_account is not None and by_account.account_login
    assert by_registry is not None and not by_registry.account_login
    assert service.check_account_password("ann", "registry-pw") is None
    assert auth(ann, account_password_for_registry=False).check_password("ann", "account-pw") is None


def test_hashes_of_one_user_share_a_salt_but_not_a_value() -> None:
    first = hash_password("one")
    second: Any = hash_password_like("two", first)
    assert passwords.argon2_salt(first) == passwords.argon2_salt(second)
    assert first.rpartition("$")[2] != second.rpartition("$")[2]
    assert passwords.argon2_salt(hash_password_like("x", "not-a-hash")) is not None  # a fresh salt then


def test_parallel_logins_with_the_right_password_all_succeed(argon2_calls: list[str]) -> None:
    # A client's first burst of requests with Basic credentials, before any is remembered: the
    # ones beyond the limit wait for a place instead of being refused, then find the password verified.
    service = auth(User(1, "admin", hash_password("right"), True, False, NOW))
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: service.login("admin", "right", "192.0.2.9") is not None, range(20)))
    assert outcomes == [True] * 20
    assert len(argon2_calls) <= 5
