"""ManagementService under concurrency (issue 8, item 7): the last active administrator and a
namespace's last owner are checked in the same transaction as the change, so two demotions at the
same moment cannot both pass the check and leave nobody in charge.

The race is made certain rather than likely: every SELECT sleeps a little after it ran, so both
threads have read before either writes, as a check-then-act implementation would let them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from dockyard.auth.passwords import hash_password
from dockyard.auth.policy import Principal
from dockyard.management.base import Actor
from dockyard.management.errors import Conflict
from tests.conftest import ADMIN, hashed


@contextmanager
def slow_selects(engine: Engine, seconds: float = 0.2) -> Iterator[None]:
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            time.sleep(seconds)

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after)


def at_once(*calls: Callable[[], object]) -> list[BaseException | None]:
    """Run the calls in threads released together; what each raised (None: it succeeded)."""
    barrier = threading.Barrier(len(calls))
    outcome: list[BaseException | None] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcome


def actor(services: Any, username: str) -> Actor:
    user = services.users.get(username)
    assert user is not None
    return Actor(Principal(user=user, account_login=True), "127.0.0.1")


def one_conflict(outcome: list[BaseException | None]) -> None:
    assert sorted(type(o).__name__ for o in outcome) == ["Conflict", "NoneType"], outcome
    assert all(o is None or isinstance(o, Conflict) for o in outcome)


def test_two_administrators_cannot_demote_each_other_at_once(services: Any) -> None:
    m = services.management
    services.users.create("root2", hash_password("root2-password"), is_admin=True)
    admin, root2 = actor(services, ADMIN[0]), actor(services, "root2")
    with slow_selects(services.db.engine):
        outcome = at_once(lambda: m.update_user(admin, "root2", is_admin=False),
                          lambda: m.update_user(root2, ADMIN[0], disabled=True))
    one_conflict(outcome)
    active = [u.username for u in services.users.list() if u.is_admin and not u.disabled]
    assert len(active) == 1, active


def test_two_owners_cannot_demote_each_other_at_once(services: Any) -> None:
    m = services.management
    for name in ("alice", "bob"):
        services.users.create(name, hashed(f"{name}-password"))
    alice, bob = actor(services, "alice"), actor(services, "bob")
    m.create_namespace(alice, "team")
    m.set_member(alice, "team", "bob", "owner")
    with slow_selects(services.db.engine):
        outcome = at_once(lambda: m.set_member(alice, "team", "bob", "developer"),
                          lambda: m.remove_member(bob, "team", "alice"))
    one_conflict(outcome)
    owners = [x.username for x in services.namespaces.members("team") if x.role == "owner"]
    assert len(owners) == 1, owners
