"""Pushes, deletes and pulls, recorded for the audit log and the per-tag pull counts.

Registry traffic is far too hot for a database write per event (manifest GETs run at ~15k/s),
so events are buffered in memory and written in one transaction by `flush`, which the app runs
every second and at shutdown. A crash can lose at most the last second of push/pull records;
management actions are written synchronously by the management service.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from dockyard.meta.audit import AuditStore
from dockyard.meta.db import utcnow

MAX_BUFFER = 10000  # events kept when the database is unreachable; the oldest are dropped


class Activity:
    def __init__(self, audit: AuditStore) -> None:
        self.audit = audit
        self._events: list[tuple[datetime, str, str, str, dict[str, Any] | None, str | None]] = []
        self._pulls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, actor: str | None, action: str, target: str, detail: dict[str, Any] | None = None,
               remote: str | None = None) -> None:
        with self._lock:
            if len(self._events) >= MAX_BUFFER:
                del self._events[0]
            self._events.append((utcnow(), actor or "anonymous", action, target, detail, remote))

    def pulled(self, repository: str, tag: str) -> None:
        with self._lock:
            self._pulls[(repository, tag)] += 1

    def flush(self) -> int:
        """Write what was buffered; returns the number of events and pull counters written."""
        with self._lock:
            events, self._events = self._events, []
            pulls, self._pulls = self._pulls, Counter()
        if not events and not pulls:
            return 0
        try:
            self.audit.record_many(events)
            self.audit.count_pulls(dict(pulls))
        except Exception:
            with self._lock:  # keep them for the next flush
                self._events[:0] = events[-MAX_BUFFER:]
                self._pulls.update(pulls)
            raise
        return len(events) + len(pulls)
