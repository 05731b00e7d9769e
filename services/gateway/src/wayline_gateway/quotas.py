"""Quotas at the edge: token buckets per tenant and per key for calls and for events, and a concurrency cap,
so that one tenant (or one runaway key) cannot starve the others.

A call must pass its key's limits and its tenant's. Buckets (the kit's quotas.py) start full; a charge bigger
than a bucket's size passes when the bucket is full and leaves it in debt. Refusals are RESOURCE_EXHAUSTED
with the quota's name (QuotaFailure) and the time after which the same call would pass (RetryInfo).

Limits come from a snapshot of the store refreshed every few seconds (`refresh`), inherited key → tenant →
the gateway's defaults. The clock is injected: tests drive it by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from wayline.common.quotas import TokenBucket, pace_events, quota_exceeded
from wayline_gateway.model import Limits, in_force

__all__ = ["CONCURRENCY_RETRY_SECONDS", "QuotaGate"]

CONCURRENCY_RETRY_SECONDS = 0.5


@dataclass
class _Subject:
    """The buckets and the in-flight count of one tenant or one key."""

    quota: str  # the quota's resource name, for QuotaFailure
    limits: Limits  # in force, kept in step by `refresh`
    requests: TokenBucket
    events: TokenBucket
    in_flight: int = 0

    def idle(self, now: float) -> bool:
        """Nothing in flight and both buckets full: the same as a subject made now."""
        return self.in_flight == 0 and self.requests.full(now) and self.events.full(now)

    def reshape(self, limits: Limits) -> None:
        self.limits = limits
        self.requests.reshape(_rate(limits.requests_per_second), _size(limits.requests_burst))
        self.events.reshape(_rate(limits.events_per_second), _size(limits.events_burst))


class QuotaGate:
    def __init__(
        self,
        defaults: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`defaults`, with every limit set, is what tenants without limits of their own get."""
        self._defaults = defaults
        self._clock = clock
        self._sleep = sleep
        self._set: Mapping[tuple[str, str], Limits] = {}
        self._subjects: dict[tuple[str, str], _Subject] = {}
        self._lock = threading.Lock()

    def refresh(self, set_limits: Mapping[tuple[str, str], Limits]) -> None:
        """Take a new snapshot of the limits set on tenants (key id '') and keys, and forget the subjects
        that are idle (a full bucket and a new one are the same), so that the gate does not keep one for
        every key that ever called."""
        with self._lock:
            self._set = dict(set_limits)
            now = self._clock()
            for (tenant, key), subject in list(self._subjects.items()):
                if subject.idle(now):
                    del self._subjects[(tenant, key)]
                else:
                    subject.reshape(self._limits(tenant, key))

    def __len__(self) -> int:
        """The tenants and keys whose buckets are held."""
        with self._lock:
            return len(self._subjects)

    def limits(self, tenant: str, key: str = "") -> Limits:
        """The limits in force for a tenant (key '') or a key."""
        with self._lock:
            return self._limits(tenant, key)

    def _limits(self, tenant: str, key: str) -> Limits:
        return in_force(
            self._defaults, self._set.get((tenant, "")), self._set.get((tenant, key)) if key else None
        )

    def _subject(self, tenant: str, key: str) -> _Subject:
        found = self._subjects.get((tenant, key))
        if found is None:
            limits = self._limits(tenant, key)
            now = self._clock()
            name = f"tenants/{tenant}/apiKeys/{key}/quota" if key else f"tenants/{tenant}/quota"
            found = _Subject(
                name,
                limits,
                TokenBucket(_rate(limits.requests_per_second), _size(limits.requests_burst), now),
                TokenBucket(_rate(limits.events_per_second), _size(limits.events_burst), now),
            )
            self._subjects[(tenant, key)] = found
        return found

    def _pair(self, tenant: str, key: str) -> tuple[_Subject, ...]:
        return (
            (self._subject(tenant, key), self._subject(tenant, "")) if key else (self._subject(tenant, ""),)
        )

    @contextmanager
    def admit(self, tenant: str, key: str, events: int = 0) -> Iterator[None]:
        """Hold a call's place for the duration of the block: one request, `events` events and one
        concurrency slot against the key's and the tenant's limits; RESOURCE_EXHAUSTED when any is over."""
        with self._lock:
            subjects = self._pair(tenant, key)
            now = self._clock()
            for subject in subjects:
                cap = subject.limits.max_concurrent_requests
                if cap is not None and subject.in_flight >= cap:
                    raise quota_exceeded(
                        subject.quota,
                        "max_concurrent_requests",
                        f"{cap} calls are already in progress",
                        CONCURRENCY_RETRY_SECONDS,
                    )
            self._check(subjects, now, 1, "requests")
            if events:
                self._check(subjects, now, events, "events")
            for subject in subjects:
                subject.requests.take(1)
                subject.events.take(events)
                subject.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                for subject in subjects:
                    subject.in_flight -= 1

    def charge_request(self, tenant: str, key: str) -> None:
        """Take one call from the key's and the tenant's request buckets (a short call that holds no
        concurrency slot, such as AdminService's); RESOURCE_EXHAUSTED when either is empty."""
        with self._lock:
            subjects = self._pair(tenant, key)
            self._check(subjects, self._clock(), 1, "requests")
            for subject in subjects:
                subject.requests.take(1)

    def charge_events(self, tenant: str, key: str, events: int, *, max_wait: float) -> None:
        """Take `events` more for a call already admitted (each message of a stream), waiting up to
        `max_wait` seconds for the buckets to refill: a stream is paced to its quota rather than cut."""
        with self._lock:
            buckets = [(subject.quota, subject.events) for subject in self._pair(tenant, key)]
        pace_events(buckets, events, max_wait, lock=self._lock, clock=self._clock, sleep=self._sleep)

    def _check(self, subjects: tuple[_Subject, ...], now: float, amount: int, kind: str) -> None:
        for subject in subjects:
            bucket = subject.requests if kind == "requests" else subject.events
            wait = bucket.wait_for(amount, now)
            if wait > 0:
                raise quota_exceeded(
                    subject.quota,
                    f"{kind}_per_second",
                    f"the {'call' if kind == 'requests' else 'event'} rate is over {bucket.rate:g} a second "
                    f"(burst {bucket.size:g})",
                    wait,
                )


def _rate(value: float | None) -> float:
    return float(value) if value is not None else float("inf")


def _size(value: int | None) -> float:
    return float(value) if value is not None else float("inf")
