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

A kept answer never outlives the data it shows (ADR 73). A new computation, in the foreground or the
background, that fails with an error saying the thing asked for is gone or no longer this caller's
(NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED: the bridge decides, `gone`) drops the kept answer instead of
leaving it for the next `max-stale` caller. `forget_tenant` drops every answer of a tenant: the bridge calls
it when an erasure passes through this gateway, and the erasure follower (erasures.py) when identity's
override feed shows one made elsewhere. Each tenant has a generation number that `forget_tenant` bumps; a
computation notes it before it starts, and keeps its answer (or shares it with callers arriving later) only
if it is unchanged, so an answer read before the erasure committed is never kept after it.
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


@dataclass(frozen=True)
class _Running:
    future: Future[bytes]
    generation: int  # the tenant's generation when the computation started


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
        return float(value) if value.isascii() and value.isdigit() else None
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
        self._in_flight: dict[CacheKey, _Running] = {}
        # Bumped by `forget_tenant`; absent means 0. One int per tenant ever forgotten.
        self._generations: dict[str, int] = {}
        self._guard: Callable[[str], bool] = lambda _tenant: True

    def guard_with(self, guard: Callable[[str], bool]) -> None:
        """Before each computation, `guard(tenant)` must say True for its answer to be kept: the erasure
        follower, which must know the tenant's place in identity's feed before anything of it is kept."""
        self._guard = guard

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

    def tenants(self) -> set[str]:
        """The tenants with kept answers (or computations under way)."""
        with self._lock:
            return {key[0] for key in self._entries} | {key[0] for key in self._in_flight}

    def forget_tenant(self, tenant: str) -> None:
        """Drop every kept answer of `tenant`, and keep none of the computations under way for it (their
        callers still get them: they asked before this call)."""
        with self._lock:
            self._generations[tenant] = self._generations.get(tenant, 0) + 1
            for key in [key for key in self._entries if key[0] == tenant]:
                self._bytes -= len(self._entries.pop(key).answer) + len(key[2])

    def drop(self, key: CacheKey) -> None:
        """Drop the kept answer of `key`, if any."""
        with self._lock:
            self._drop(key)

    def compute(
        self,
        key: CacheKey,
        work: Callable[[], bytes],
        *,
        gone: Callable[[BaseException], bool] = lambda _error: False,
    ) -> Cached:
        """Run `work` for `key` and keep its answer, unless the same key is being computed already (since the
        tenant's answers were last forgotten): then wait for that computation and share its answer (or its
        error). When `work` raises an error `gone` accepts, the kept answer of `key` is dropped."""
        with self._lock:
            generation = self._generations.get(key[0], 0)
            running = self._in_flight.get(key)
            if running is not None and running.generation != generation:
                running = None  # started before an erasure: its answer is not ours to share
            if running is None:
                mine = _Running(Future(), generation)
                self._in_flight[key] = mine
        if running is not None:
            answer = running.future.result()
            with self._lock:
                entry = self._entries.get(key)
            computed_at = entry.computed_at if entry is not None else self._wall_clock()
            return Cached(answer, computed_at, 0.0)
        try:
            if not self._guard(key[0]):
                generation = -1  # answered, never kept
            answer = work()
        except BaseException as error:
            with self._lock:
                self._finish(key, mine)
                if gone(error):
                    self._drop(key)
            mine.future.set_exception(error)
            raise
        computed_at = self._store(key, answer, generation)
        with self._lock:
            self._finish(key, mine)
        mine.future.set_result(answer)
        return Cached(answer, computed_at, 0.0)

    def _finish(self, key: CacheKey, mine: _Running) -> None:
        if self._in_flight.get(key) is mine:  # else a computation started after an erasure took the slot
            del self._in_flight[key]

    def _drop(self, key: CacheKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.answer) + len(key[2])

    def _store(self, key: CacheKey, answer: bytes, generation: int) -> float:
        size = len(answer) + len(key[2])
        computed_at = self._wall_clock()
        with self._lock:
            if self._generations.get(key[0], 0) != generation:  # the tenant was forgotten meanwhile
                return computed_at
            self._drop(key)
            if size > self._max_bytes:  # larger than the whole cache: answered, never kept
                return computed_at
            self._entries[key] = _Entry(answer, computed_at, self._clock())
            self._bytes += size
            while self._bytes > self._max_bytes:
                evicted_key, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.answer) + len(evicted_key[2])
        return computed_at
