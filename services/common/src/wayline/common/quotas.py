"""Token buckets and the refusal a quota answers with, shared by the gateway (every call's quotas) and ingest
(the events of the streams the gateway's data plane passes straight to it, ADR 106).

A bucket starts full and refills at `rate` up to `size`; a charge passes when min(charge, size) tokens are
there and may leave the bucket in debt, so that a batch bigger than the burst is not refused for ever (the
calls after it wait for the debt to be repaid).

The event-pacing header: the gateway's data plane passes a stream's event limits to ingest in it, as
`{max_wait} {quota} {rate} {burst} [{quota} {rate} {burst} ...]` (space-separated; a quota is its resource
name, `tenants/{tenant}/quota` or `tenants/{tenant}/apiKeys/{id}/quota`, which has no spaces). Each message of
the stream then pays its events against every named quota, waiting up to `max_wait` seconds for them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wayline.common.errors import ResourceExhausted

__all__ = [
    "EVENT_PACING_HEADER",
    "EventLimit",
    "EventPacer",
    "EventPacing",
    "TokenBucket",
    "format_event_pacing",
    "pace_events",
    "parse_event_pacing",
    "quota_exceeded",
]

EVENT_PACING_HEADER = "x-wayline-event-pacing"


class TokenBucket:
    def __init__(self, rate: float, size: float, now: float) -> None:
        self.rate = rate
        self.size = size
        self._tokens = size
        self._updated = now

    def _refill(self, now: float) -> None:
        if math.isinf(self.rate):  # unlimited
            self._tokens = self.size
            return
        self._tokens = min(self.size, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` could be taken; 0 when it can be now."""
        self._refill(now)
        if self._tokens >= min(amount, self.size):
            return 0.0
        return (min(amount, self.size) - self._tokens) / self.rate

    def take(self, amount: float) -> None:
        self._tokens -= amount

    def full(self, now: float) -> bool:
        """Refilled to its size: the same as a bucket made now, so a holder may forget it."""
        return self.wait_for(self.size, now) == 0.0

    def reshape(self, rate: float, size: float) -> None:
        self.rate = rate
        self._tokens = min(self._tokens, size) if size < self.size else self._tokens
        self.size = size


def quota_exceeded(quota: str, limit: str, why: str, retry_after: float) -> ResourceExhausted:
    """RESOURCE_EXHAUSTED naming the quota (QuotaFailure) and its limit, with the delay after which the same
    call would pass (RetryInfo)."""
    return ResourceExhausted(
        f"quota '{quota}' ({limit}): {why}; retry after {retry_after:.3g} s",
        retry_after=retry_after,
        quota_subject=quota,
        metadata={"quota": quota, "limit": limit},
    )


def pace_events(
    buckets: Sequence[tuple[str, TokenBucket]],
    events: int,
    max_wait: float,
    *,
    lock: threading.Lock,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Take `events` from every bucket (each named by its quota), waiting up to `max_wait` seconds in all for
    them to refill: a stream is paced to its quota rather than cut. Over it, RESOURCE_EXHAUSTED naming the
    slowest quota. `lock` guards the buckets, and is not held while waiting."""
    waited = 0.0
    while True:
        with lock:
            now = clock()
            waits = [(bucket.wait_for(events, now), quota, bucket) for quota, bucket in buckets]
            wait, quota, slowest = max(waits, key=lambda found: found[0], default=(0.0, "", None))
            if wait == 0.0:
                for _, bucket in buckets:
                    bucket.take(events)
                return
            if waited + wait > max_wait:
                assert slowest is not None  # a wait comes from a bucket
                why = f"the event rate is over {slowest.rate:g} events a second"
                raise quota_exceeded(quota, "events_per_second", why, wait)
        sleep(wait)
        waited += wait


@dataclass(frozen=True)
class EventLimit:
    quota: str  # the quota's resource name
    rate: float  # events a second
    burst: float


@dataclass(frozen=True)
class EventPacing:
    """What the event-pacing header says: the longest wait per message, and the limits to pay against."""

    max_wait: float
    limits: tuple[EventLimit, ...]


def format_event_pacing(pacing: EventPacing) -> str:
    """The header's value (numbers written in full: they read back exactly)."""
    parts = [repr(float(pacing.max_wait))]
    for limit in pacing.limits:
        parts += [limit.quota, repr(float(limit.rate)), repr(float(limit.burst))]
    return " ".join(parts)


def parse_event_pacing(value: str) -> EventPacing:
    """The header's value read; ValueError when it is not in the format above (a gateway of another
    version, or a bug: the caller is internal, the message is for its operator)."""
    tokens = value.split()
    if not tokens or (len(tokens) - 1) % 3:
        raise ValueError(f"expected '{{max_wait}} {{quota}} {{rate}} {{burst}} ...', got {value!r}")
    max_wait = float(tokens[0])
    limits = []
    for at in range(1, len(tokens), 3):
        quota, rate, burst = tokens[at], float(tokens[at + 1]), float(tokens[at + 2])
        if not (rate > 0 and burst > 0 and math.isfinite(rate) and math.isfinite(burst)):
            raise ValueError(f"the limit of {quota} must be a finite rate and burst above 0: {rate}, {burst}")
        limits.append(EventLimit(quota, rate, burst))
    if not (max_wait >= 0 and math.isfinite(max_wait)):
        raise ValueError(f"the longest wait must be a finite number of seconds, got {tokens[0]!r}")
    return EventPacing(max_wait, tuple(limits))


@dataclass
class _Kept:
    bucket: TokenBucket
    used: float  # when a stream last asked for it


class EventPacer:
    """The buckets of the quotas named by streams' event-pacing headers, one per quota in this process, kept
    at the limits the newest stream's header stated (a limit changed at the gateway reaches the next stream).

    Charges look their buckets up by quota name, so that a bucket can be forgotten: one left full and unasked
    for `forget_after` seconds is dropped (a full bucket and a new one are the same), which keeps the process
    from holding a bucket for every key that ever streamed."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        forget_after: float = 600.0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._forget_after = forget_after
        self._lock = threading.Lock()
        self._kept: dict[str, _Kept] = {}
        self._swept = clock()

    def __len__(self) -> int:
        """The quotas held."""
        with self._lock:
            return len(self._kept)

    def open(self, pacing: EventPacing) -> None:
        """A stream begins: its quotas' buckets made, or reshaped to its header's limits."""
        with self._lock:
            now = self._clock()
            for limit in pacing.limits:
                bucket = self._bucket(limit, now)
                if (bucket.rate, bucket.size) != (limit.rate, limit.burst):
                    bucket.reshape(limit.rate, limit.burst)

    def charge(self, pacing: EventPacing, events: int) -> None:
        """One message's events against its stream's quotas, paced (`pace_events`)."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            buckets = [(limit.quota, self._bucket(limit, now)) for limit in pacing.limits]
        pace_events(buckets, events, pacing.max_wait, lock=self._lock, clock=self._clock, sleep=self._sleep)

    def _bucket(self, limit: EventLimit, now: float) -> TokenBucket:
        kept = self._kept.get(limit.quota)
        if kept is None:
            kept = self._kept[limit.quota] = _Kept(TokenBucket(limit.rate, limit.burst, now), now)
        kept.used = now
        return kept.bucket

    def _sweep(self, now: float) -> None:
        """Forget the buckets full and unasked for `forget_after` seconds; at most once in that time."""
        if now - self._swept < self._forget_after:
            return
        self._swept = now
        for quota, kept in list(self._kept.items()):
            if now - kept.used >= self._forget_after and kept.bucket.full(now):
                del self._kept[quota]
