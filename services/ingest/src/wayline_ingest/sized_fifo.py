"""A dict that keeps its newest entries within a byte budget (and a count): what the forwarder keeps for the
sinks behind the first (prepared records, identity's resolutions). Not thread-safe: each user holds its own
lock around it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["SizedFifo"]

K = TypeVar("K")
V = TypeVar("V")


class SizedFifo(Generic[K, V]):
    """Entries in the order first put; `evict` drops the oldest while the sizes given with them pass
    `max_bytes` or there are more than `max_entries`. With `keep_newest` it never drops the last one put,
    even when that alone passes the budget (the forwarder's prepared records: a record larger than the
    budget is then prepared once for every sink, not again for each). Putting a key again replaces its value
    and its size, in its old place."""

    def __init__(self, max_bytes: int, max_entries: int | None = None, *, keep_newest: bool = False) -> None:
        self._max_bytes = max_bytes
        self._least_entries = 1 if keep_newest else 0
        self._max_entries = max_entries if max_entries is not None else float("inf")
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        return None if found is None else found[0]

    def put(self, key: K, value: V, size: int) -> None:
        replaced = self._entries.get(key)
        if replaced is not None:
            self._bytes -= replaced[1]
        self._entries[key] = (value, size)
        self._bytes += size

    def evict(self) -> None:
        entries = self._entries
        while len(entries) > self._least_entries and (
            self._bytes > self._max_bytes or len(entries) > self._max_entries
        ):
            _, (_, size) = entries.popitem(last=False)
            self._bytes -= size
