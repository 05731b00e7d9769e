"""The TraceSink Decide hands every decision to: `record` costs a lock and an append on Decide's hot path;
a background thread turns the traces into `Decision Logged` events (events.py) and writes them through
ingest in batches, durable once ingest acknowledges them.

- Bounded: at most `capacity` traces wait (queued or being written). When the buffer is full, the incoming
  trace is dropped (the ones already waiting keep their place): counted in `decision.traces.dropped`
  (reason `buffer_full`) and logged, once per `drop_log_seconds` with the count since the last log, so a
  flood is visible without a log line per decision.
- Retries: while ingest (or identity, which names the person's identifier) is unavailable, the same batch is
  retried with exponential backoff and jitter; nothing is lost within the buffer, and the event ids derive
  from the decision ids, so a batch ingest stored before failing to answer is stored once.
- Refusals ingest gives per event (a tracking plan in reject mode without `Decision Logged`) and persons
  identity no longer knows are dropped, counted and logged: retrying cannot cure them. A person erased
  (identity's override feed, forgetting.py) is dropped before every attempt to write, even when their
  event was built before the erasure: it must not carry their identifier to ingest, where identity would
  make a new profile of it. A trace of an erased person is not even kept.
- `stop` flushes what waits, within its deadline; what is still waiting then is dropped and counted.
Every recorded trace is also put in RecentTraces, so GetDecision finds it before the store has it. Decide
hands over a PendingTrace (its result, not yet a message): the background thread builds the message, so the
protobuf of every candidate, feature and factor is not paid for on the request thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from opentelemetry import metrics

from wayline.client.batching import MAX_BATCH_BYTES, MAX_EVENT_BYTES, split, wire_size
from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline_decision.decide.traces import PendingTrace
from wayline_decision.errors import DownstreamUnavailable, PersonUnknown
from wayline_decision.traces.clients import EventWriter, PersonIdentifiers
from wayline_decision.traces.events import trace_event
from wayline_decision.traces.recent import RecentTraces

__all__ = ["IngestTraceSink", "SinkPolicy"]

log = structlog.get_logger("wayline.decision.traces")
_meter = metrics.get_meter("wayline.decision")
_recorded = _meter.create_counter("decision.traces.recorded", unit="{trace}", description="Traces recorded.")
_written = _meter.create_counter(
    "decision.traces.written", unit="{trace}", description="Traces ingest acknowledged (durable)."
)
_dropped = _meter.create_counter(
    "decision.traces.dropped", unit="{trace}", description="Traces dropped, by reason."
)
_DROP_REASONS = ("buffer_full", "shutdown", "person_unknown", "rejected")


@dataclass(frozen=True)
class SinkPolicy:
    capacity: int = 50_000  # traces waiting at most
    batch_size: int = 500  # events per TrackBatch (ingest's limit is 1,000)
    linger_seconds: float = 0.1  # how long a batch waits to fill
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    max_event_bytes: int = MAX_EVENT_BYTES  # ingest's event limit (WAYLINE_INGEST_MAX_EVENT_BYTES)
    max_batch_bytes: int = MAX_BATCH_BYTES  # ingest's batch limit (WAYLINE_INGEST_MAX_BATCH_BYTES)
    drop_log_seconds: float = 10.0


@dataclass
class _Item:
    tenant: str
    trace: PendingTrace
    event: event_pb2.Event | None = None  # built once, so a retry sends the very same event
    dropped: bool = False  # counted once, however often its batch is retried


@dataclass
class _Drops:
    counts: Counter[str] = field(default_factory=Counter)
    unlogged: Counter[str] = field(default_factory=Counter)
    logged_at: float = float("-inf")


class IngestTraceSink:
    """A TraceSink (decide/traces.py). `start` before the first trace is written; `stop` flushes."""

    def __init__(
        self,
        writer: EventWriter,
        people: PersonIdentifiers,
        recent: RecentTraces,
        policy: SinkPolicy = SinkPolicy(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._people = people
        self._recent = recent
        self._policy = policy
        self._clock = clock
        self._queue: deque[_Item] = deque()
        self._in_flight = 0
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._deadline = float("inf")  # when stopping: the flush's end
        self._thread: threading.Thread | None = None
        for reason in _DROP_REASONS:  # every series from the start, so that the first drop shows in a rate
            _dropped.add(0, {"reason": reason})
        self._drops = _Drops()
        self.written = 0

    # The hot path.
    def record(self, tenant: str, trace: decision_pb2.Decision | PendingTrace) -> None:
        if isinstance(trace, decision_pb2.Decision):
            trace = PendingTrace.built(trace)
        if self._people.erased(tenant, trace.person_id):  # a decision naming an erased person id
            self._drop("person_unknown", 1)  # neither kept nor written
            return
        self._recent.add(tenant, trace)
        _recorded.add(1)
        with self._ready:
            if len(self._queue) + self._in_flight >= self._policy.capacity or self._stopping.is_set():
                full = True
            else:
                full = False
                self._queue.append(_Item(tenant, trace))
                if len(self._queue) >= self._policy.batch_size:
                    self._ready.notify()
        if full:
            self._drop("buffer_full", 1)

    @property
    def dropped(self) -> dict[str, int]:
        """Traces dropped so far, by reason."""
        with self._ready:
            return dict(self._drops.counts)

    @property
    def waiting(self) -> int:
        with self._ready:
            return len(self._queue) + self._in_flight

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decision-trace-sink", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what waits, for at most `timeout` seconds; drop (and count) what is left then."""
        self._deadline = self._clock() + timeout
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        with self._ready:
            left = len(self._queue) + self._in_flight
            self._queue.clear()
        if left:
            self._drop("shutdown", left)
        self._log_drops(force=True)

    def _drop(self, reason: str, count: int) -> None:
        _dropped.add(count, {"reason": reason})
        with self._ready:
            self._drops.counts[reason] += count
            self._drops.unlogged[reason] += count
        self._log_drops()

    def _log_drops(self, force: bool = False) -> None:
        with self._ready:
            now = self._clock()
            recent = now - self._drops.logged_at < self._policy.drop_log_seconds
            if not self._drops.unlogged or (recent and not force):
                return
            counts, self._drops.unlogged = dict(self._drops.unlogged), Counter()
            self._drops.logged_at = now
        log.warning(
            "decision.traces_dropped",
            counts=counts,
            hint="buffer_full: ingest is slow or down for longer than the buffer covers "
            "(WAYLINE_DECISION_TRACE_BUFFER); rejected: a tracking plan refuses `Decision Logged`; "
            "person_unknown: the person was erased, or the decision named an identifier identity did not "
            "know; shutdown: ingest was down when the service stopped",
        )

    # The background thread.
    def _take(self) -> list[_Item]:
        """The next batch (waiting up to the linger for it to fill); empty once stopped and drained."""
        with self._ready:
            while not self._queue:
                if self._stopping.is_set():
                    return []
                self._ready.wait(0.5)
            if len(self._queue) < self._policy.batch_size and not self._stopping.is_set():
                self._ready.wait(self._policy.linger_seconds)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._policy.batch_size))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            delay = self._policy.initial_backoff
            while batch:
                try:
                    batch = self._write_one_tenant(batch)
                except DownstreamUnavailable as down:
                    if self._stopping.is_set() and self._clock() >= self._deadline:
                        return  # stop() counts what is left
                    log.info(
                        "decision.traces_retrying", error=down.message, waiting=self.waiting, delay=delay
                    )
                    self._back_off(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not secrets
                    delay = min(delay * 2, self._policy.max_backoff)
                with self._ready:
                    self._in_flight = len(batch)
            self._log_drops()

    def _back_off(self, delay: float) -> None:
        if not self._stopping.is_set():
            self._stopping.wait(delay)  # stop() cuts the wait short: the flush starts at once
        else:
            time.sleep(max(0.0, min(delay, self._deadline - self._clock())))

    def _write_one_tenant(self, batch: list[_Item]) -> list[_Item]:
        """Write the first tenant's traces of `batch`; the rest of the batch. Raises DownstreamUnavailable
        (the batch is then retried as it was: the events already built are kept, so a retry sends them as
        they were)."""
        tenant = batch[0].tenant
        mine = [item for item in batch if item.tenant == tenant]
        rest = [item for item in batch if item.tenant != tenant]
        events: list[event_pb2.Event] = []
        for item in mine:
            if item.dropped:
                continue
            if self._people.erased(tenant, item.trace.person_id):
                item.dropped = True  # erased while the trace waited (ingest down, say)
                self._drop("person_unknown", 1)
                continue
            if item.event is None:
                try:
                    identifier = self._people.identifier(tenant, item.trace.person_id)
                except PersonUnknown:
                    item.dropped = True
                    self._drop("person_unknown", 1)
                    continue
                item.event = trace_event(item.trace.message(), identifier, self._policy.max_event_bytes)
            events.append(item.event)
        if not events:
            return rest
        # Ingest refuses a whole TrackBatch over its byte limit, and a refused batch sent again is refused
        # again: what does not fit waits for the next write, at the head of the queue's order.
        sizes = [wire_size(event) for event in events]
        fitting = len(split(events, sizes, max_events=len(events), max_bytes=self._policy.max_batch_bytes)[0])
        if fitting < len(events):
            later = {id(event) for event in events[fitting:]}
            events = events[:fitting]
            rest = [item for item in mine if id(item.event) in later] + rest
        outcome = self._writer.write(tenant, events)
        for event in events:
            if event.event_id in outcome.rejected:
                log.warning(
                    "decision.trace_rejected",
                    tenant=tenant,
                    event_id=event.event_id,
                    why=outcome.rejected[event.event_id],
                )
                self._drop("rejected", 1)
        written = len(events) - len(outcome.rejected)
        self.written += written
        _written.add(written)
        return rest
