"""Recent answers of read-only RPCs, for HTTP callers that accept an answer of a given age (ADR 58).

A funnel, a path map or a retention grid over ten million events takes seconds to compute; a console page
showing one should not. Callers say how old an answer they accept, with HTTP's own words: `Cache-Control:
max-stale=<seconds>` (our answers are never "fresh", so this is the age they take). Within that age the
cached answer comes back at once with its `Age`; once an answer served this way is older than
`refresh_after`, it is computed again in the background (RFC 5861's stale-while-revalidate), so the next
caller gets a younger one without waiting. A caller that sends no `max-stale` always gets a new answer, which
also refreshes the cache for the others. This is what PostHog does for insights and dashboards.

Only RPCs whose contract marks them NO_SIDE_EFFECTS are cached; the key is (tenant, method, request
bytes), and a key's scopes are checked before any lookup, so a tenant only ever reads its own answers.
Identical requests that miss are computed once (single flight): ten people opening the same slow page start
one query. Memory is bounded (least recently used answers go first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

__all__ = ["AnswerCache", "CacheKey", "Cached", "max_stale"]

CacheKey = tuple[str, str, bytes]  # (tenant, method path, request wire bytes)


@dataclass(frozen=True)
class Cached:
    answer: bytes
    computed_at: float  # wall clock (time.time), for the caller's "as of"
    age: float  # seconds


@dataclass
class _Entry:
    answer: bytes
    computed_at: float
    monotonic_at: float


def max_stale(cache_control: str) -> float | None:
    """Seconds from a `Cache-Control` request header's `max-stale=N` (None when absent or malformed; a bare
    `max-stale` means any age, as in RFC 9111)."""
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() != "max-stale":
            continue
        value = value.strip().strip('"')
        if not value:
            return float("inf")
        return float(value) if value.isdigit() else None
    return None


class AnswerCache:
    """Thread-safe; one per gateway process."""

    def __init__(
        self,
        max_bytes: int,
        refresh_after: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_bytes = max_bytes
        self._refresh_after = refresh_after
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._bytes = 0
        self._in_flight: dict[CacheKey, Future[bytes]] = {}

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def lookup(self, key: CacheKey, max_age: float) -> Cached | None:
        """The answer for `key` if one at most `max_age` seconds old is held."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            age = self._clock() - entry.monotonic_at
            if age > max_age:
                return None
            self._entries.move_to_end(key)
            return Cached(entry.answer, entry.computed_at, age)

    def needs_refresh(self, cached: Cached) -> bool:
        return cached.age >= self._refresh_after

    def refreshing(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._in_flight

    def compute(self, key: CacheKey, work: Callable[[], bytes]) -> Cached:
        """Run `work` for `key` and keep its answer, unless the same key is being computed already: then wait
        for that computation and share its answer (or its error)."""
        with self._lock:
            running = self._in_flight.get(key)
            if running is None:
                future: Future[bytes] = Future()
                self._in_flight[key] = future
        if running is not None:
            answer = running.result()
            with self._lock:
                entry = self._entries.get(key)
            computed_at = entry.computed_at if entry is not None else self._wall_clock()
            return Cached(answer, computed_at, 0.0)
        try:
            answer = work()
        except BaseException as error:
            with self._lock:
                del self._in_flight[key]
            future.set_exception(error)
            raise
        computed_at = self._store(key, answer)
        with self._lock:
            del self._in_flight[key]
        future.set_result(answer)
        return Cached(answer, computed_at, 0.0)

    def _store(self, key: CacheKey, answer: bytes) -> float:
        size = len(answer) + len(key[2])
        computed_at = self._wall_clock()
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.answer) + len(key[2])
            if size > self._max_bytes:  # larger than the whole cache: answered, never kept
                return computed_at
            self._entries[key] = _Entry(answer, computed_at, self._clock())
            self._bytes += size
            while self._bytes > self._max_bytes:
                evicted_key, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.answer) + len(evicted_key[2])
        return computed_at
