"""The persons this process has seen named by an override row, as source or as target: a hint for the
timeline's read, never a source of truth.

A timeline first reads a person's page as if no override concerned them, in one statement that also counts
the override rows naming them; when it finds some, two more statements read the page exactly
(store/timeline.py). For a person known to be named, that first statement is wasted: a third of a merged
person's read on 10M events (docs/benchmarks.md, "a merged person's timeline"). So the timeline reads a
person of this set the exact way at once. The exact read is right for every person, so the set being stale,
incomplete or emptied changes which statements answer, never the answer: an override recorded by another
replica is learnt here when a first statement finds it, and an erased one merely leaves a person on the
slower, exact read.

Bounded: at most `capacity` persons, the least recently noted dropped first. Kept as tuples of strings, which
the garbage collector stops tracking, so a full set adds nothing to its full collections.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["DEFAULT_CAPACITY", "NamedPersons"]

# About 25 MB at 100k persons (a tenant's id strings and the dict's entries).
DEFAULT_CAPACITY = 100_000


class NamedPersons:
    """Thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._persons: OrderedDict[tuple[str, str], None] = OrderedDict()

    def note(self, tenant: str, persons: Iterable[str]) -> None:
        """`persons` of `tenant` are named by an override row."""
        with self._lock:
            for person in persons:
                key = (tenant, person)
                self._persons[key] = None
                self._persons.move_to_end(key)
            while len(self._persons) > self._capacity:
                self._persons.popitem(last=False)

    def named(self, tenant: str, person: str) -> bool:
        with self._lock:
            return (tenant, person) in self._persons

    def __len__(self) -> int:
        return len(self._persons)
