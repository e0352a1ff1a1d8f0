"""Slows down password guessing: after a few failed logins for the same account from the same
address, further attempts are refused (429 with Retry-After) until a window passes. In memory,
per process: enough to make online guessing slow; argon2 makes each guess costly besides."""

from __future__ import annotations

import threading
import time

MAX_FAILURES = 5
WINDOW_SECONDS = 60.0


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, remote: str | None) -> int | None:
        """Seconds to wait before this account may try again from this address, or None."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get((username, remote or ""), []) if now - t < self.window]
            if len(recent) < self.max_failures:
                return None
            return max(1, int(self.window - (now - recent[0])) + 1)

    def failed(self, username: str, remote: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100000:
                self._failures.clear()
            key = (username, remote or "")
            self._failures[key] = [t for t in self._failures.get(key, []) if now - t < self.window][-self.max_failures:] + [now]

    def succeeded(self, username: str, remote: str | None) -> None:
        with self._lock:
            self._failures.pop((username, remote or ""), None)
