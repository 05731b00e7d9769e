"""The deduplication window: the most recently accepted event ids of every tenant, in memory.

A retry of an event ingest still remembers is acknowledged again with the first attempt's `received_at`
and is not spooled again, so its stored copy (and its clock-skew-corrected timestamp) never changes
between retries. The window is bounded by a count (`WAYLINE_INGEST_DEDUP_WINDOW_EVENTS`, about 220 bytes
per id) and rebuilt at start from the batches still in the spool, so a client resending after a crash is
recognised too. Beyond the window, deduplication is the sinks' job (every sink is idempotent by event_id);
the window only saves them the work and keeps the first attempt's stamps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["DedupWindow"]


class DedupWindow:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(tenant: str, event_id: str) -> str:
        return DedupWindow.prefix(tenant) + event_id

    @staticmethod
    def prefix(tenant: str) -> str:
        """What every key of `tenant` starts with: `prefix(t) + event_id == key(t, event_id)`."""
        return f"{tenant}\x00"

    def get(self, key: str) -> int | None:
        """The received_at (µs since the epoch) of the accepted event with this key, or None."""
        return self._seen.get(key)  # a plain dict read; safe under the GIL without the lock

    def add(self, items: list[tuple[str, int]]) -> None:
        if not self._capacity:
            return
        with self._lock:
            seen = self._seen
            seen.update(items)  # one C loop; keys are new event ids, appended at the young end
            for _ in range(len(seen) - self._capacity):
                seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
