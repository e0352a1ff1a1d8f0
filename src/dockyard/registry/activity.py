"""Pull counts per tag, buffered in memory.

Registry traffic is far too hot for a database write per pull (manifest GETs run at ~15k/s), so
pulls are counted in memory and added in one transaction by `flush`, which every node's worker
runs every second and at shutdown. A crash loses at most the last second of counts. What is
pushed and deleted is not counted here: those are events, written with the change itself
(core/events.py, meta/events.py).
"""

from __future__ import annotations

import threading
from collections import Counter

from dockyard.meta.audit import AuditStore


class Activity:
    def __init__(self, audit: AuditStore) -> None:
        self.audit = audit
        self._pulls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def pulled(self, repository: str, tag: str) -> None:
        with self._lock:
            self._pulls[(repository, tag)] += 1

    def flush(self) -> int:
        """Add what was counted; returns the number of (repository, tag) counters written."""
        with self._lock:
            pulls, self._pulls = self._pulls, Counter()
        if not pulls:
            return 0
        try:
            self.audit.count_pulls(dict(pulls))
        except Exception:
            with self._lock:  # keep them for the next flush
                self._pulls.update(pulls)
            raise
        return len(pulls)
