"""The forwarder: one thread per sink reads the spool from the sink's cursor, enriches, delivers, and
moves the cursor only after the sink took (or parked) everything before it.

Consecutive batches of the same tenant are delivered together, up to `max_write_bytes` and MAX_WRITE_EVENTS
per call, so a burst of small Track calls reaches the sink as a few large writes. A sink far behind may
catch up in larger writes (`catch_up_write_bytes_by_sink`: the journey store, which pays per INSERT).

During a burst (the spool taking more than `burst_events_per_second`) the sinks hold back, each until its
oldest undelivered event is `burst_hold_seconds` old: the sinks run on the same cores as the intake, and
while the intake outruns what they can drain they fall behind anyway; holding back for a bounded time gives
the cores to the acknowledgements and lets the sinks catch up afterwards in fewer, larger writes. Under an
intake that stays that high, each sink delivers as it did, about `burst_hold_seconds` behind. No sink holds
back while the spool is half full or more: a hold must never bring the spool to its quota.

Each sink's lag is published as gauges (`ingest.spool.backlog`: bytes still to deliver; `ingest.spool.lag`:
how old its oldest undelivered event is at most), and the spool's use of its quota as `ingest.spool.usage`:
the numbers a full spool is foreseen by. The lag is read from marks each sink's thread takes as it goes
(where the log ended, and when): once the sink's cursor passes a mark's end, everything it still lacks was
written after that mark's time. Marks are taken at most every quarter second, which is the lag's resolution.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from opentelemetry import metrics, propagate, trace

from wayline_ingest.delivery import DeadLetterPark, Deliverer, DeliveryPolicy, start_per_sink
from wayline_ingest.destinations import SELECTABLE_SINKS, deselected
from wayline_ingest.sinks.base import Sink
from wayline_ingest.sized_fifo import SizedFifo
from wayline_ingest.spool import Spool, SpoolBatch
from wayline_ingest.wire import with_backfill

__all__ = [
    "MAX_WRITE_EVENTS",
    "SINK_BITS",
    "Forwarder",
    "IntakeRate",
    "PreparedRecords",
    "burst_held_counter",
    "chunks",
]

log = structlog.get_logger("wayline.ingest.forwarder")
_tracer = trace.get_tracer("wayline.ingest")
_MAX_LINKS = 32
_MARK_EVERY_SECONDS = 0.25
_STOP_CHECK_SECONDS = 0.1  # how soon a sink's wait between small writes notices a stop
_INTAKE_WINDOW_SECONDS = 0.5  # the intake rate is measured over about this long
_HOLD_UNDER_FILL_RATIO = 0.5  # sinks hold back in a burst only while the spool is less full than this
# Prepared events kept for the sinks behind the first (PreparedRecords): a second or two of a busy spool,
# as far as the journey store's 1 s linger puts it behind the others.
_PREPARED_BYTES = 16 * 1024 * 1024

# The most events one delivery call carries: the contracts' limit for WriteEvents and both ObserveEvents.
MAX_WRITE_EVENTS = 10_000

# The sink mask bit of each sink in spool records (records.SpoolBatch.sink_mask). Fixed forever.
SINK_BITS = {"identity": 1, "journeys": 2, "decision": 4, "orchestrator": 8}

Transform = Callable[[Sequence[bytes]], list[bytes]]

# The running forwarders the spool gauges read (one per ingest server; tests host several in one process).
_running: weakref.WeakSet[Forwarder] = weakref.WeakSet()


def _observe_backlog(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for forwarder in list(_running):
        for sink, backlog, _ in forwarder.lag():
            yield metrics.Observation(backlog, {"sink": sink})


def _observe_lag(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for forwarder in list(_running):
        for sink, _, seconds in forwarder.lag():
            yield metrics.Observation(seconds, {"sink": sink})


def _observe_usage(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for forwarder in list(_running):
        yield metrics.Observation(forwarder.spool_usage())


def burst_held_counter(meter: metrics.Meter) -> metrics.Counter:
    return meter.create_counter(
        "ingest.sink.burst_held",
        unit="s",
        description="Seconds a sink held back its deliveries during bursts, by sink "
        "(WAYLINE_INGEST_BURST_EVENTS_PER_SECOND).",
    )


_meter = metrics.get_meter("wayline.ingest")
_held = burst_held_counter(_meter)
_meter.create_observable_gauge(
    "ingest.spool.backlog",
    callbacks=[_observe_backlog],
    unit="By",
    description="Bytes of the spool a sink has still to take, by sink.",
)
_meter.create_observable_gauge(
    "ingest.spool.lag",
    callbacks=[_observe_lag],
    unit="s",
    description="How old a sink's oldest undelivered event is at most, by sink (0 while it is caught up; "
    "resolution a quarter second).",
)
_meter.create_observable_gauge(
    "ingest.spool.usage",
    callbacks=[_observe_usage],
    unit="1",
    description="How full the spool is against its quota (0 to 1); at 1 Track answers RESOURCE_EXHAUSTED.",
)


class Forwarder:
    def __init__(
        self,
        spool: Spool,
        sinks: Sequence[Sink],
        *,
        policy: DeliveryPolicy,
        dead_letters: DeadLetterPark | None,
        max_write_bytes: int,
        transform: Transform | None = None,
        linger: float = 0.0,
        linger_by_sink: Mapping[str, float] | None = None,
        catch_up_write_bytes_by_sink: Mapping[str, int] | None = None,
        burst_events_per_second: float = 0.0,
        burst_hold_seconds: float = 0.0,
        burst_held: metrics.Counter | None = None,
    ) -> None:
        """`linger` is the least time between two of a sink's writes that are smaller than a full write
        (`max_write_bytes`): an event after a quiet spell goes at once, a trickle goes in one write per
        linger, a backlog of a full write or more at once. `linger_by_sink` overrides it per sink name (the
        journey store pays per INSERT; decision wants events soon). `catch_up_write_bytes_by_sink` lets a
        sink that is behind by at least that much take writes that large (the journey store's INSERTs cost
        it less in all when fewer; while it keeps up, full writes stay `max_write_bytes`, so no one INSERT
        holds the machine up long). While the spool takes more than `burst_events_per_second` (0: never),
        each sink waits until its oldest undelivered event is `burst_hold_seconds` old (the module's
        docstring says why), counting the seconds held in `burst_held` (the process's
        `ingest.sink.burst_held` by default)."""
        self._spool = spool
        self._stop = threading.Event()
        self._deliverers = [Deliverer(sink, policy, dead_letters, self._stop) for sink in sinks]
        self._prepared = PreparedRecords(transform)
        self._linger = {
            d.sink.name: (linger_by_sink or {}).get(d.sink.name, linger) for d in self._deliverers
        }
        self._max_write_bytes = max_write_bytes
        self._catch_up_bytes = dict(catch_up_write_bytes_by_sink or {})
        self._last_write = {d.sink.name: float("-inf") for d in self._deliverers}  # monotonic, per sink
        self._intake = IntakeRate(lambda: spool.events_taken)
        self._burst_events_per_second = burst_events_per_second
        self._burst_hold_seconds = burst_hold_seconds
        self._burst_held = burst_held or _held
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()
        # Per sink, (log end, monotonic time) marks, oldest first; the first is the latest one it passed.
        self._marks: dict[str, deque[tuple[int, float]]] = {d.sink.name: deque() for d in self._deliverers}

    def start(self) -> None:
        self._threads = start_per_sink(self._deliverers, self._run, "forward")
        _running.add(self)

    def stop(self, timeout: float = 10.0) -> None:
        _running.discard(self)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        for deliverer in self._deliverers:
            deliverer.sink.close()

    def breaker_states(self) -> dict[str, str]:
        return {d.sink.name: d.breaker.state for d in self._deliverers}

    def lag(self) -> list[tuple[str, int, float]]:
        """Per sink: (name, bytes still to deliver, the most its oldest undelivered event's age can be)."""
        now = time.monotonic()
        lags = []
        for name in self._marks:
            position = self._spool.position(name)
            backlog = self._spool.log.end - position
            lags.append((name, backlog, self._oldest_age(name, position, now) if backlog > 0 else 0.0))
        return lags

    def _oldest_age(self, name: str, position: int, now: float) -> float:
        """The most the oldest event after `position` can be aged: everything the log held at the last
        mark the sink passed is behind it."""
        passed = [at for end, at in list(self._marks[name])[:2] if end <= position]
        return now - (passed[-1] if passed else self._started)

    def _mark(self, name: str) -> None:
        """Note where the log ends now, at most every `_MARK_EVERY_SECONDS` (see the module's docstring)."""
        marks, now = self._marks[name], time.monotonic()
        if not marks or now - marks[-1][1] >= _MARK_EVERY_SECONDS:
            marks.append((self._spool.log.end, now))

    def _passed(self, name: str, position: int) -> None:
        """The sink's cursor is at `position`: keep only the latest mark it passed and the ones ahead."""
        marks = self._marks[name]
        while len(marks) >= 2 and marks[1][0] <= position:
            marks.popleft()

    def spool_usage(self) -> float:
        return self._spool.fill_ratio

    def _run(self, deliverer: Deliverer) -> None:
        """Deliver until stopped. An unexpected error is logged and the loop starts again from the cursor
        a second later: a thread that died would stall its sink without a trace."""
        while not self._stop.is_set():
            try:
                if not self._forward(deliverer):
                    return
            except Exception:
                log.exception("forwarder.error", sink=deliverer.sink.name)
                self._stop.wait(1.0)

    def _forward(self, deliverer: Deliverer) -> bool:
        """Deliver what is in the spool after the sink's cursor; False when stopped."""
        name = deliverer.sink.name
        while not self._stop.is_set():
            self._mark(name)
            position = self._spool.position(name)
            if self._spool.log.end > position and not (
                self._hold_in_burst(name, position) and self._space_out(name, position)
            ):
                return False
            limit = self._write_limit(name, position)
            records = self._spool.read(name, position, limit)
            if not records:
                self._passed(name, position)
                self._intake.per_second()  # a sample while idle: a burst's rate is then seen from its start
                self._spool.log.wait_for(position, timeout=0.5)
                continue
            self._last_write[name] = time.monotonic()
            if not self._deliver_records(deliverer, SINK_BITS.get(name, 0), records, limit):
                return False
            self._spool.advance(name, records[-1][0])
            self._passed(name, records[-1][0])
        return False

    def _space_out(self, name: str, position: int) -> bool:
        """Wait until the sink's linger has passed since its last write, or a full write waits in the log
        (backlog is the log's end, not what one read returns: a read stops short of a full write); False
        when stopped. A sink that pays per write, as the journey store does per INSERT, pays as much for a
        few events as for a full write, so a trickle goes in one larger write a linger."""
        due = self._last_write[name] + self._linger[name]
        full = position + self._max_write_bytes - 1
        while (left := due - time.monotonic()) > 0:
            if self._stop.is_set():
                return False
            if self._spool.log.wait_for(full, timeout=min(left, _STOP_CHECK_SECONDS)):
                break
        return not self._stop.is_set()

    def _hold_in_burst(self, name: str, position: int) -> bool:
        """While the intake is in a burst, wait until the sink's oldest undelivered event is the hold's age
        (the module's docstring says why); False when stopped."""
        if self._burst_events_per_second <= 0:
            return True
        began, held = time.monotonic(), False
        while self._intake.per_second() > self._burst_events_per_second:
            if self._oldest_age(name, position, time.monotonic()) >= self._burst_hold_seconds:
                break
            if self._spool.fill_ratio >= _HOLD_UNDER_FILL_RATIO:  # never refuse events for want of a drain
                break
            held = True
            if self._stop.wait(_STOP_CHECK_SECONDS):
                break
            self._mark(name)
        if held:
            self._burst_held.add(time.monotonic() - began, {"sink": name})
        return not self._stop.is_set()

    def _write_limit(self, name: str, position: int) -> int:
        """The largest write the sink takes next: its catch-up size while it is at least that far behind."""
        catch_up = self._catch_up_bytes.get(name, 0)
        behind = self._spool.log.end - position
        return catch_up if catch_up > self._max_write_bytes and behind >= catch_up else self._max_write_bytes

    def _deliver_records(
        self, deliverer: Deliverer, bit: int, records: list[tuple[int, SpoolBatch | None]], max_bytes: int
    ) -> bool:
        """Deliver the events of `records` in order, merging runs of one tenant, in writes of at most
        `max_bytes`; False when stopped."""
        run: list[tuple[int, SpoolBatch]] = []
        run_bytes = 0
        for position, batch in records:
            if batch is None or not batch.for_sink(bit):
                continue
            if run and (batch.tenant != run[0][1].tenant or run_bytes >= max_bytes):
                if not self._send(deliverer, run, max_bytes):
                    return False
                run, run_bytes = [], 0
            run.append((position, batch))
            run_bytes += sum(len(e) for e in batch.events)
        return not run or self._send(deliverer, run, max_bytes)

    def _send(self, deliverer: Deliverer, run: list[tuple[int, SpoolBatch]], max_bytes: int) -> bool:
        """Deliver one tenant's run of batches (each with the position after it) in a span that continues
        the first batch's trace and links the others'."""
        traces = [propagate.extract({"traceparent": b.traceparent}) for _, b in run if b.traceparent]
        links = [
            trace.Link(span.get_span_context())
            for c in traces[1:_MAX_LINKS]
            if (span := trace.get_current_span(c))
        ]
        tenant = run[0][1].tenant
        with _tracer.start_as_current_span(
            f"ingest.forward {deliverer.sink.name}",
            context=traces[0] if traces else None,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "wayline.sink": deliverer.sink.name,
                "wayline.events": sum(len(b.events) for _, b in run),
            },
        ):
            sink = deliverer.sink.name
            events = [e for position, batch in run for e in self._prepared.for_sink(sink, position, batch)]
            if not events:  # every event of the run turned this sink off (destinations.py)
                return True
            return all(deliverer.deliver(tenant, chunk) for chunk in chunks(events, max_bytes))


class PreparedRecords:
    """Each spool record's events as every sink gets them: the batch's backfill flag set on each (imported
    history, known from its timestamp), then enriched (`transform`). Made once, by the first sink to reach
    the record, and kept for the others, the newest `max_bytes` of them (and always the newest record,
    however large); a sink further behind makes them again. Besides the work saved (three sinks did it three
    times), every sink then hands the identity resolver the same bytes objects, which its cache finds without
    hashing them again. A record whose events select sinks (`integrations`, destinations.py) also keeps the
    sinks each event turns off."""

    def __init__(self, transform: Transform | None, max_bytes: int = _PREPARED_BYTES) -> None:
        self._transform = transform
        self._lock = threading.Lock()
        # position → the events, and per event the sinks it turns off (None: the record selects none)
        self._kept: SizedFifo[int, _Prepared] = SizedFifo(max_bytes, keep_newest=True)

    def events(self, position: int, batch: SpoolBatch) -> list[bytes]:
        """The events of the record before `position` (the spool's position after it), prepared."""
        return self._prepared(position, batch).events

    def for_sink(self, sink: str, position: int, batch: SpoolBatch) -> list[bytes]:
        """`events`, less those whose `integrations` turn `sink` off."""
        prepared = self._prepared(position, batch)
        if prepared.excluded is None or sink not in SELECTABLE_SINKS:  # the journey store takes every event
            return prepared.events
        return [e for e, off in zip(prepared.events, prepared.excluded, strict=True) if sink not in off]

    def _prepared(self, position: int, batch: SpoolBatch) -> _Prepared:
        with self._lock:
            kept = self._kept.get(position)
        if kept is not None:
            return kept
        events = [with_backfill(event, batch.backfill) for event in batch.events]
        if self._transform is not None:
            events = self._transform(events)
        made = _Prepared(events, [deselected(event) for event in events] if batch.selects else None)
        size = sum(map(len, events))
        with self._lock:
            raced = self._kept.get(position)
            if raced is not None:  # another sink made them meanwhile: share its objects
                return raced
            self._kept.put(position, made, size)
            self._kept.evict()
        return made


@dataclass(frozen=True)
class _Prepared:
    events: list[bytes]
    excluded: list[frozenset[str]] | None


class IntakeRate:
    """Events a second taken over the last `_INTAKE_WINDOW_SECONDS`, from a running count sampled whenever
    the rate is asked for (the sinks' threads ask as they go, idle ones too). Between two samples the count
    is taken to have grown evenly. Until a window has been seen, the rate over what has (0 under a tenth of
    a second)."""

    def __init__(self, count: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self._count = count
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def per_second(self) -> float:
        with self._lock:
            now, count = self._clock(), self._count()
            samples = self._samples
            samples.append((now, count))
            start = now - _INTAKE_WINDOW_SECONDS
            while len(samples) > 2 and samples[1][0] <= start:  # keep one sample at or before the start
                samples.popleft()
            then, before = samples[0]
            if then >= start:
                return (count - before) / (now - then) if now - then >= 0.1 else 0.0
            after, next_count = samples[1]
            at_start = before + (next_count - before) * (start - then) / (after - then)
            return (count - at_start) / _INTAKE_WINDOW_SECONDS


def chunks(events: Sequence[bytes], max_bytes: int, max_events: int = MAX_WRITE_EVENTS) -> list[list[bytes]]:
    """Consecutive runs of `events` whose request size stays under `max_bytes` (one event at least), so
    no delivery outgrows a gRPC message, of at most `max_events` each (the contracts' limit per call: a
    full write of small events holds more). Each run is its own idempotent call."""
    runs: list[list[bytes]] = [[]]
    size = 0
    for event in events:
        event_size = len(event) + 6  # field tag and length prefix, generously
        if runs[-1] and (size + event_size > max_bytes or len(runs[-1]) >= max_events):
            runs.append([])
            size = 0
        runs[-1].append(event)
        size += event_size
    return runs
