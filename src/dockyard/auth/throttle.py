"""Slows down password guessing without letting a stranger lock an account's owner out.

Failures are counted per (account, client) and per client, never per account alone: a client
that guesses wrong is refused (429 with Retry-After) for a window, while the same account keeps
logging in from everywhere else. An attempt that will compute a password hash reserves its place
first (`begin`) and is booked as a failure or a success afterwards (`end`), the check and the
reservation under one lock, so parallel guesses cannot all pass the check before any is recorded:
of N simultaneous wrong guesses at most `max_failures` reach argon2.

The client is the address `client_address` gives (X-Forwarded-For only from trusted proxies);
IPv6 clients are counted per /64, the block a single host usually holds. In memory, per process,
bounded (least recently used keys are dropped first).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

MAX_FAILURES = 5  # per account and client
MAX_CLIENT_FAILURES = 30  # per client, whatever the accounts (password spraying)
WINDOW_SECONDS = 60.0
MAX_KEYS = 100_000
PENDING_WAIT_SECONDS = 5.0  # how long an attempt waits for a place held by attempts still running


@dataclass(slots=True)
class _Count:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0  # attempts begun and not yet ended


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved place: hand it back to `end`."""

    account_key: tuple[str, str]
    client_key: tuple[str, str]


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def client_key(remote: str | None) -> str:
    """The throttle's name for a client: its address, an IPv6 address's /64."""
    if not remote:
        return ""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS,
                 max_client_failures: int = MAX_CLIENT_FAILURES, max_keys: int = MAX_KEYS) -> None:
        self.max_failures = max_failures
        self.max_client_failures = max_client_failures
        self.window = window
        self.max_keys = max_keys
        self._counts: OrderedDict[tuple[str, str], _Count] = OrderedDict()
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # an attempt was booked: places may be free

    def check(self, username: str, remote: str | None) -> None:
        """Raise Throttled when this client may not try this account now (nothing reserved)."""
        attempt = self._attempt(username, remote)
        with self._lock:
            self._raise_if_over(attempt, time.monotonic())

    def begin(self, username: str, remote: str | None) -> Attempt:
        """Reserve an attempt for this account from this client; raises Throttled when the client
        has failed (or is trying) too often already. Taken right before a password hash is
        computed: attempts that cost nothing (a password verified a moment ago, a robot's secret)
        need no place, so a client's parallel requests with the right password are never refused."""
        attempt = self._attempt(username, remote)
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        with self._lock:
            # Places held only by attempts still running are waited for (a client's first
            # parallel requests with the right password: once one has succeeded, the others find
            # the password verified); places held by failures are not.
            while (busy := self._raise_if_over(attempt, time.monotonic())) and self._ended.wait(deadline - time.monotonic()):
                pass
            if busy:
                raise Throttled(1)
            for key in (attempt.account_key, attempt.client_key):
                self._count(key).pending += 1
        return attempt

    def end(self, attempt: Attempt, succeeded: bool | None) -> None:
        """Book a reserved attempt: True (the password matched: the account's failures from this
        client are forgiven), False (a failure) or None (no answer, e.g. the database failed)."""
        self._book(attempt, succeeded, reserved=True)

    def record(self, username: str, remote: str | None, succeeded: bool) -> None:
        """Book an attempt that took no place (see begin)."""
        self._book(self._attempt(username, remote), succeeded, reserved=False)

    @staticmethod
    def _attempt(username: str, remote: str | None) -> Attempt:
        client = client_key(remote)
        return Attempt(("u", f"{username}\0{client}"), ("c", client))

    def _raise_if_over(self, attempt: Attempt, now: float) -> bool:
        """Raise Throttled when failures fill this client's places; True when attempts still
        running fill them (wait for one to end), False when there is room."""
        waits = [self._wait(key, limit, now) for key, limit in
                 ((attempt.account_key, self.max_failures), (attempt.client_key, self.max_client_failures))]
        if any(w for w in waits):
            raise Throttled(max(w for w in waits if w))
        return any(w == 0 for w in waits)

    def _book(self, attempt: Attempt, succeeded: bool | None, reserved: bool) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (attempt.account_key, attempt.client_key):
                count = self._count(key) if succeeded is False else self._counts.get(key)
                if count is None:  # nothing to forgive, or evicted meanwhile
                    continue
                if reserved:
                    count.pending = max(0, count.pending - 1)
                if succeeded is False:
                    count.failures.append(now)
                elif succeeded and key is attempt.account_key:
                    count.failures.clear()
                if not count.failures and not count.pending:
                    del self._counts[key]
            if reserved:
                self._ended.notify_all()

    def _count(self, key: tuple[str, str]) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count()
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        return count

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> int | None:
        """Seconds until `key` may try again, 0 while attempts still running fill its places, or
        None when it may try now."""
        count = self._counts.get(key)
        if count is None:
            return None
        while count.failures and now - count.failures[0] >= self.window:
            count.failures.popleft()
        if len(count.failures) + count.pending < limit:
            return None
        # Over the limit by failures: until the oldest counted one leaves the window. Over it by
        # attempts still running only: 0, until one of them ends.
        excess = len(count.failures) - limit
        if excess < 0:
            return 0
        return max(1, int(self.window - (now - count.failures[excess])) + 1)
