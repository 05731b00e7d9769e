"""Who holds each identifier, remembered across transactions: the read cache in front of resolution.

Resolving a batch reads the owner of every identifier it carries; most are known and unchanged since the last
time, so reading them again is most of the cost of a batch. The cache is exact, not eventually consistent:
each transaction applies its changes to the cache (new identifiers, merges that move a profile's
identifiers, profiles cut or erased) just before it commits, while it still holds the tenant's write lock,
so the next transaction of the tenant sees them; a failed commit drops the tenant's entries. That is only
sound while one process writes the database, which is what SQLite allows anyway: identity uses the cache on
SQLite and reads PostgreSQL, shared by replicas, every time.

Bounded: beyond `capacity` identifiers the oldest tenth is forgotten (they are read again when needed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from wayline_identity.model import Key

__all__ = ["CachedOwner", "OwnerCache", "Pending"]

CachedOwner = tuple[str, str, int, int]  # person, origin person, first seen, last seen


@dataclass
class Pending:
    """What one transaction changes, applied to the cache at its end in this order."""

    moves: list[tuple[str, str]] = field(default_factory=list)  # (source person, target person): a merge
    forgotten: set[Key] = field(default_factory=set)  # ids of profiles cut or erased
    rows: dict[Key, CachedOwner] = field(default_factory=dict)  # the transaction's final view of its ids


class _Tenant:
    def __init__(self) -> None:
        self.owners: dict[Key, CachedOwner] = {}
        self.by_person: dict[str, set[Key]] = {}

    def forget(self, key: Key) -> None:
        row = self.owners.pop(key, None)
        if row is not None:
            keys = self.by_person.get(row[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_person[row[0]]

    def put(self, key: Key, row: CachedOwner) -> None:
        self.forget(key)
        self.owners[key] = row
        self.by_person.setdefault(row[0], set()).add(key)


class OwnerCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._tenants: dict[str, _Tenant] = {}
        self._size = 0
        self._lock = threading.Lock()

    def lookup(self, tenant: str, keys: Iterable[Key]) -> dict[Key, CachedOwner]:
        with self._lock:
            cached = self._tenants.get(tenant)
            if cached is None:
                return {}
            owners = cached.owners
            return {key: owners[key] for key in keys if key in owners}

    def apply(self, tenant: str, pending: Pending) -> None:
        with self._lock:
            cached = self._tenants.setdefault(tenant, _Tenant())
            before = len(cached.owners)
            for source, target in pending.moves:
                for key in list(cached.by_person.get(source, ())):
                    _, origin, first, last = cached.owners[key]
                    cached.put(key, (target, origin, first, last))
            for key in pending.forgotten:
                cached.forget(key)
            owners, by_person = cached.owners, cached.by_person
            for key, row in pending.rows.items():
                known = owners.get(key)
                if known is None:  # first seen here (inlined: a batch seen for the first time is all new)
                    owners[key] = row
                    keys = by_person.get(row[0])
                    if keys is None:
                        by_person[row[0]] = {key}
                    else:
                        keys.add(key)
                elif known == row:  # most of a batch's identifiers come back unchanged:
                    owners[key] = owners.pop(key)  # only made the newest (evictions take the oldest)
                else:
                    cached.put(key, row)
            self._size += len(cached.owners) - before
            if self._size > self._capacity:
                self._evict()

    def clear(self, tenant: str) -> None:
        with self._lock:
            cached = self._tenants.pop(tenant, None)
            if cached is not None:
                self._size -= len(cached.owners)

    def _evict(self) -> None:
        """Forget the oldest tenth of every tenant's entries (dicts keep insertion order)."""
        for cached in self._tenants.values():
            for key in list(cached.owners)[: max(1, len(cached.owners) // 10)]:
                cached.forget(key)
        self._size = sum(len(c.owners) for c in self._tenants.values())
