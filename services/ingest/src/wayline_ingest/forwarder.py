"""The forwarder: one thread per sink reads the spool from the sink's cursor, enriches, delivers, and
moves the cursor only after the sink took (or parked) everything before it.

Consecutive batches of the same tenant are delivered together, up to `max_write_bytes` per call, so a burst
of small Track calls reaches the sink as a few large writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import structlog
from opentelemetry import propagate, trace

from wayline_ingest.delivery import DeadLetterPark, Deliverer, DeliveryPolicy, start_per_sink
from wayline_ingest.sinks.base import Sink
from wayline_ingest.spool import Spool, SpoolBatch
from wayline_ingest.wire import with_backfill

__all__ = ["SINK_BITS", "Forwarder", "chunks"]

log = structlog.get_logger("wayline.ingest.forwarder")
_tracer = trace.get_tracer("wayline.ingest")
_MAX_LINKS = 32

# The sink mask bit of each sink in spool records (records.SpoolBatch.sink_mask). Fixed forever.
SINK_BITS = {"identity": 1, "journeys": 2, "decision": 4, "orchestrator": 8}

Transform = Callable[[Sequence[bytes]], list[bytes]]


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
    ) -> None:
        """`linger` is how long a sink's delivery waits for more events when it has only a little to send;
        `linger_by_sink` overrides it per sink name (the journey store pays per INSERT; decision wants
        events at once)."""
        self._spool = spool
        self._stop = threading.Event()
        self._deliverers = [Deliverer(sink, policy, dead_letters, self._stop) for sink in sinks]
        self._max_write_bytes = max_write_bytes
        self._transform = transform
        self._linger = {
            d.sink.name: (linger_by_sink or {}).get(d.sink.name, linger) for d in self._deliverers
        }
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = start_per_sink(self._deliverers, self._run, "forward")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        for deliverer in self._deliverers:
            deliverer.sink.close()

    def breaker_states(self) -> dict[str, str]:
        return {d.sink.name: d.breaker.state for d in self._deliverers}

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
            position = self._spool.position(name)
            records = self._spool.read(name, position, self._max_write_bytes)
            if not records:
                self._spool.log.wait_for(position, timeout=0.5)
                continue
            linger = self._linger[name]
            if linger and records[-1][0] - position < self._max_write_bytes // 4:
                # Little to send: let more arrive, and make one larger write instead of many small ones.
                if self._stop.wait(linger):
                    return False
                records = self._spool.read(name, position, self._max_write_bytes)
            if not self._deliver_records(deliverer, SINK_BITS.get(name, 0), records):
                return False
            self._spool.advance(name, records[-1][0])
        return False

    def _deliver_records(
        self, deliverer: Deliverer, bit: int, records: list[tuple[int, SpoolBatch | None]]
    ) -> bool:
        """Deliver the events of `records` in order, merging runs of one tenant; False when stopped."""
        run: list[SpoolBatch] = []
        run_bytes = 0
        for _, batch in records:
            if batch is None or not batch.for_sink(bit):
                continue
            if run and (batch.tenant != run[0].tenant or run_bytes >= self._max_write_bytes):
                if not self._send(deliverer, run):
                    return False
                run, run_bytes = [], 0
            run.append(batch)
            run_bytes += sum(len(e) for e in batch.events)
        return not run or self._send(deliverer, run)

    def _send(self, deliverer: Deliverer, run: list[SpoolBatch]) -> bool:
        """Deliver one tenant's run of batches in a span that continues the first batch's trace and links
        the others'."""
        traces = [propagate.extract({"traceparent": b.traceparent}) for b in run if b.traceparent]
        links = [
            trace.Link(span.get_span_context())
            for c in traces[1:_MAX_LINKS]
            if (span := trace.get_current_span(c))
        ]
        # Each event says whether it came in a backfill batch (imported history: known from its timestamp).
        events = [with_backfill(event, batch.backfill) for batch in run for event in batch.events]
        with _tracer.start_as_current_span(
            f"ingest.forward {deliverer.sink.name}",
            context=traces[0] if traces else None,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={"wayline.sink": deliverer.sink.name, "wayline.events": len(events)},
        ):
            payload = self._transform(events) if self._transform is not None else events
            return all(
                deliverer.deliver(run[0].tenant, chunk) for chunk in chunks(payload, self._max_write_bytes)
            )


def chunks(events: Sequence[bytes], max_bytes: int) -> list[list[bytes]]:
    """Consecutive runs of `events` whose request size stays under `max_bytes` (one event at least), so
    no delivery outgrows a gRPC message. Each run is its own idempotent call."""
    runs: list[list[bytes]] = [[]]
    size = 0
    for event in events:
        event_size = len(event) + 6  # field tag and length prefix, generously
        if runs[-1] and size + event_size > max_bytes:
            runs.append([])
            size = 0
        runs[-1].append(event)
        size += event_size
    return runs
