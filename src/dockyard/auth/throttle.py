"""Slows down password guessing without letting a stranger lock an account's owner out.

Failures are counted per (account, client) and per client, never per account alone: a client
that guesses wrong is refused (429 with Retry-After) for a window, while the same account keeps
logging in from everywhere else. Each attempt reserves its place before the password is checked
(`begin`) and is booked as a failure or a success afterwards (`end`), under one lock, so parallel
guesses cannot all pass the check before any is recorded: of N simultaneous wrong guesses at most
`max_failures` reach argon2.

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

    def begin(self, username: str, remote: str | None) -> Attempt:
        """Reserve an attempt for this account from this client; raises Throttled when the client
        has failed (or is trying) too often already."""
        client = client_key(remote)
        attempt = Attempt(("u", f"{username}\0{client}"), ("c", client))
        now = time.monotonic()
        with self._lock:
            waits = [self._wait(key, limit, now) for key, limit in
                     ((attempt.account_key, self.max_failures), (attempt.client_key, self.max_client_failures))]
            if any(w is not None for w in waits):
                raise Throttled(max(w for w in waits if w is not None))
            for key in (attempt.account_key, attempt.client_key):
                self._count(key).pending += 1
        return attempt

    def end(self, attempt: Attempt, succeeded: bool | None) -> None:
        """Book the attempt: True (the password matched: the account's failures from this client
        are forgiven), False (a failure) or None (no answer, e.g. the database failed)."""
        now = time.monotonic()
        with self._lock:
            for key in (attempt.account_key, attempt.client_key):
                count = self._counts.get(key)
                if count is None:  # evicted meanwhile
                    continue
                count.pending = max(0, count.pending - 1)
                if succeeded is False:
                    count.failures.append(now)
                elif succeeded and key is attempt.account_key:
                    count.failures.clear()
                if not count.failures and not count.pending:
                    del self._counts[key]

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
        """Seconds until `key` may try again, or None when it may now."""
        count = self._counts.get(key)
        if count is None:
            return None
        while count.failures and now - count.failures[0] >= self.window:
            count.failures.popleft()
        if len(count.failures) + count.pending < limit:
            return None
        # Over the limit by failures: until the oldest counted one leaves the window. Over it by
        # attempts still running only: a moment.
        excess = len(count.failures) - limit
        oldest = count.failures[max(0, excess)] if count.failures and excess >= 0 else None
        return max(1, int(self.window - (now - oldest)) + 1) if oldest is not None else 1
