"""A bounded least-recently-used map for the caches unauthenticated callers can fill (verified
tokens, access decisions): O(1) per operation, and never more than `max_entries` entries, so a
stream of new keys costs a constant amount of memory and no rebuild of the whole cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()  # the views run in worker threads too

    def get(self, key: K) -> V | None:
        # No lock on the hot path: each OrderedDict call is atomic under the GIL; a key removed
        # by another thread between the two calls is simply not moved.
        value = self._entries.get(key)
        if value is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
