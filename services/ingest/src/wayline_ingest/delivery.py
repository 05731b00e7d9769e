"""How a sink's events are delivered: at least once, retried with exponential backoff and full jitter
behind a circuit breaker, and events a sink refuses for good set aside as dead letters.

- A transient failure (the sink is down or busy) is retried for as long as it lasts: the spool holds the
  events meanwhile, and its quota pushes back on callers if the outage outlasts the disk.
- A permanent failure (INVALID_ARGUMENT and the like) of a multi-event call is narrowed down: the event the
  sink named (BadRequest `events[i]`) is parked and the rest delivered, or, when it named none, the call is
  split in halves until the refused events stand alone. INTERNAL and UNKNOWN may be a passing defect, so
  they are retried a few times before they count as permanent.
- The breaker opens after `failures_to_open` consecutive failures. While open, the sink is not called until
  the backoff delay passes; then one call probes it (half-open). Each sink has its own thread, cursor and
  breaker, so one failing sink never slows the others.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from opentelemetry import metrics

from wayline_ingest.sinks.base import DeliveryFailure, PermanentDeliveryError, Sink, TransientDeliveryError

__all__ = ["Backoff", "CircuitBreaker", "DeadLetterPark", "Deliverer", "DeliveryPolicy", "start_per_sink"]

log = structlog.get_logger("wayline.ingest.delivery")
_meter = metrics.get_meter("wayline.ingest")
_delivered = _meter.create_counter("ingest.sink.delivered", unit="{event}", description="Events a sink took.")
_failures = _meter.create_counter("ingest.sink.failures", unit="{call}", description="Failed sink calls.")
_parked = _meter.create_counter("ingest.sink.dead_letters", unit="{event}", description="Events parked.")

_RETRY_BEFORE_PERMANENT = {"INTERNAL", "UNKNOWN", "DATA_LOSS"}


class DeadLetterPark(Protocol):
    def park(
        self,
        sink: str,
        tenant: str,
        event: bytes,
        *,
        failure: DeliveryFailure,
        attempts: int,
        first_attempt: datetime,
    ) -> None:
        """Keep `event` (a serialised Event), which `sink` refused for good, with why."""


@dataclass(frozen=True)
class DeliveryPolicy:
    initial_delay: float = 0.1
    max_delay: float = 30.0
    failures_to_open: int = 5
    attempts_before_permanent: int = 3


class Backoff:
    """Exponential backoff with full jitter (AWS's advice): uniform in [0, min(max, initial * 2^n)]."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self._initial = initial
        self._maximum = maximum
        self._failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    def next_delay(self) -> float:
        ceiling = min(self._maximum, self._initial * 2**self._failures)
        self._failures = min(self._failures + 1, 32)
        return (
            self._rng.uniform(ceiling / 2, ceiling) if self._failures == 1 else self._rng.uniform(0, ceiling)
        )

    def reset(self) -> None:
        self._failures = 0


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, sink: str, failures_to_open: int) -> None:
        self.sink = sink
        self.state = self.CLOSED
        self._threshold = failures_to_open
        self._consecutive = 0

    def record_success(self) -> None:
        if self.state != self.CLOSED:
            log.info("sink.breaker_closed", sink=self.sink)
        self.state = self.CLOSED
        self._consecutive = 0

    def record_failure(self) -> None:
        self._consecutive += 1
        if self.state != self.OPEN and self._consecutive >= self._threshold:
            log.warning("sink.breaker_opened", sink=self.sink, consecutive_failures=self._consecutive)
            self.state = self.OPEN

    def probe(self) -> None:
        """The open breaker's wait is over: let one call through."""
        if self.state == self.OPEN:
            self.state = self.HALF_OPEN


class Deliverer:
    """Delivers to one sink under the policy; `stop` interrupts waits (the events stay in the spool)."""

    def __init__(
        self, sink: Sink, policy: DeliveryPolicy, dead_letters: DeadLetterPark | None, stop: threading.Event
    ) -> None:
        self.sink = sink
        self.breaker = CircuitBreaker(sink.name, policy.failures_to_open)
        self._policy = policy
        self._backoff = Backoff(policy.initial_delay, policy.max_delay)
        self._dead_letters = dead_letters
        self._stop = stop

    def deliver(self, tenant: str, events: Sequence[bytes]) -> bool:
        """True once every event is taken or parked; False when stopped first (nothing is lost: the
        caller's cursor has not moved)."""
        first_attempt = datetime.now(UTC)
        attempts = 0
        while True:
            attempts += 1
            try:
                self.sink.deliver(tenant, events)
            except TransientDeliveryError as error:
                if not self._failed(error.failure, attempts):
                    return False
                continue
            except PermanentDeliveryError as error:
                if (
                    error.failure.code in _RETRY_BEFORE_PERMANENT
                    and attempts < self._policy.attempts_before_permanent
                ):
                    if not self._failed(error.failure, attempts):
                        return False
                    continue
                self.breaker.record_success()  # the sink answered: it is up
                self._backoff.reset()
                return self._narrow(tenant, events, error.failure, attempts, first_attempt)
            self.breaker.record_success()
            self._backoff.reset()
            _delivered.add(len(events), {"sink": self.sink.name})
            return True

    def _failed(self, failure: DeliveryFailure, attempts: int) -> bool:
        """Count a failure and wait before the next attempt; False when stopped meanwhile."""
        _failures.add(1, {"sink": self.sink.name, "code": failure.code})
        self.breaker.record_failure()
        delay = self._backoff.next_delay()
        log.warning(
            "sink.delivery_failed",
            sink=self.sink.name,
            code=failure.code,
            error=failure.message,
            attempt=attempts,
            retry_in_s=round(delay, 3),
            breaker=self.breaker.state,
        )
        if self._stop.wait(delay):
            return False
        self.breaker.probe()
        return True

    def _narrow(
        self, tenant: str, events: Sequence[bytes], failure: DeliveryFailure, attempts: int, first: datetime
    ) -> bool:
        if len(events) == 1:
            self._park(tenant, events[0], failure, attempts, first)
            return True
        index = failure.index
        if index is not None and 0 <= index < len(events):
            self._park(tenant, events[index], failure, attempts, first)
            parts = [events[:index], events[index + 1 :]]
        else:
            middle = len(events) // 2
            parts = [events[:middle], events[middle:]]
        return all(self.deliver(tenant, part) for part in parts if part)

    def _park(
        self, tenant: str, event: bytes, failure: DeliveryFailure, attempts: int, first: datetime
    ) -> None:
        _parked.add(1, {"sink": self.sink.name, "code": failure.code})
        log.warning("sink.dead_letter", sink=self.sink.name, code=failure.code, reason=failure.reason)
        if self._dead_letters is not None:
            self._dead_letters.park(
                self.sink.name, tenant, event, failure=failure, attempts=attempts, first_attempt=first
            )


def start_per_sink(
    deliverers: Sequence[Deliverer], run: Callable[[Deliverer], None], prefix: str
) -> list[threading.Thread]:
    """One daemon thread per sink running `run(deliverer)`: what the forwarder and the JetStream relay both
    need, so that one slow sink never holds up another."""
    threads = []
    for deliverer in deliverers:
        thread = threading.Thread(
            target=run, args=(deliverer,), name=f"{prefix}-{deliverer.sink.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads
