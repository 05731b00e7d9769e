"""The sinks hold back during a burst: while the spool takes more events a second than the burst rate, each
sink waits until its oldest undelivered event is the hold's age, then delivers as before. The intake keeps
the cores; nothing is lost or delayed past the hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from wayline.event.v1 import event_pb2
from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.forwarder import Forwarder, IntakeRate, burst_held_counter
from wayline_ingest.spool import Spool, SpoolBatch
from wayline_ingest.spool.records import encode

BURST_RATE = 200.0  # events a second; the bursts below append 10 events every 5 ms (up to 2,000 a second)


class ArrivalSink:
    """A sink that notes when each delivery arrives and the ids of the events it held."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.arrivals: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        with self._lock:
            ids = [event_pb2.Event.FromString(event).event_id for event in events]
            self.arrivals.append((time.monotonic(), ids))

    def close(self) -> None:
        return None

    def events(self) -> list[str]:
        with self._lock:
            return [event for _, events in self.arrivals for event in events]

    def arrived_by(self, moment: float) -> int:
        with self._lock:
            return sum(len(events) for at, events in self.arrivals if at <= moment)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", ["decision"], segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def forwarder_to(
    spool: Spool,
    sink: ArrivalSink,
    *,
    burst_rate: float,
    hold: float,
    reader: InMemoryMetricReader | None = None,
) -> Forwarder:
    meter = MeterProvider([reader or InMemoryMetricReader()]).get_meter("test")
    return Forwarder(
        spool,
        [sink],
        policy=DeliveryPolicy(),
        dead_letters=None,
        max_write_bytes=1 << 20,
        linger=0.0,
        burst_events_per_second=burst_rate,
        burst_hold_seconds=hold,
        burst_held=burst_held_counter(meter),
    )


def held_seconds(reader: InMemoryMetricReader) -> dict[str, float]:
    """`ingest.sink.burst_held` by sink."""
    data = reader.get_metrics_data()
    points = [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "ingest.sink.burst_held"
        for point in metric.data.data_points
    ]
    return {str((p.attributes or {})["sink"]): p.value for p in points if isinstance(p, NumberDataPoint)}


def burst(spool: Spool, seconds: float, tag: str) -> tuple[list[str], dict[str, float]]:
    """Append 10 events every 5 ms for `seconds`; their ids, and when each was acknowledged."""
    sent: list[str] = []
    acknowledged: dict[str, float] = {}
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < seconds:
        ids = [f"{tag}-{n}-{i}" for i in range(10)]
        batch = [event_pb2.Event(event_id=event_id).SerializeToString() for event_id in ids]
        spool.append(SpoolBatch("acme", batch), timeout=10)
        now = time.monotonic()
        sent.extend(ids)
        acknowledged.update(dict.fromkeys(ids, now))
        n += 1
        time.sleep(0.005)
    return sent, acknowledged


def run_burst(
    spool: Spool, forwarder: Forwarder, sink: ArrivalSink, seconds: float, tag: str
) -> tuple[list[str], dict[str, float], int]:
    """Start the forwarder, let it idle, burst for `seconds`, and wait until the sink has everything: the
    ids sent, when each was acknowledged, and how many had arrived by the burst's end."""
    forwarder.start()
    try:
        time.sleep(0.3)  # idle, waiting on the spool
        sent, acknowledged = burst(spool, seconds, tag)
        during = sink.arrived_by(time.monotonic())
        deadline = time.monotonic() + 15
        while len(sink.events()) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        forwarder.stop()
    return sent, acknowledged, during


@pytest.mark.parametrize(("burst_rate", "held"), [(BURST_RATE, True), (0.0, False)])
def test_sinks_hold_back_during_a_burst_and_deliver_everything_after_it(
    spool: Spool, burst_rate: float, held: bool
) -> None:
    sink, reader = ArrivalSink("decision"), InMemoryMetricReader()
    forwarder = forwarder_to(spool, sink, burst_rate=burst_rate, hold=5.0, reader=reader)
    sent, acknowledged, during = run_burst(spool, forwarder, sink, 0.8, "b")
    ended = max(acknowledged.values())
    assert sorted(sink.events()) == sorted(sent)  # everything, once
    if held:
        # Only what went before the rate showed the burst (its first tenth of a second or so) arrived during
        # it; the rest came once the rate fell (about half a second after), long before the hold ran out.
        assert during < len(sent) // 3
        assert sink.arrivals[-1][0] - ended < 2.0
        assert 0.3 < held_seconds(reader)["decision"] < 3.0  # most of the 0.8 s burst and the rate's fall
    else:
        assert during > len(sent) // 2
        assert held_seconds(reader) == {}


def test_under_an_intake_that_stays_high_a_sink_delivers_about_the_hold_behind(spool: Spool) -> None:
    sink = ArrivalSink("decision")
    hold = 0.5
    forwarder = forwarder_to(spool, sink, burst_rate=BURST_RATE, hold=hold)
    sent, acknowledged, during = run_burst(spool, forwarder, sink, 3.0, "s")
    assert sorted(sink.events()) == sorted(sent)
    assert during > len(sent) // 2  # the sink kept delivering through the burst, not only after it
    waits = sorted(at - acknowledged[event] for at, events in sink.arrivals for event in events)
    # Each event waited about the hold: no more than the hold, the lag's quarter-second resolution and slack
    # for a busy test machine; and the sink did hold back (the median event waited a good part of it).
    assert waits[len(waits) // 2] > hold / 4
    assert waits[int(len(waits) * 0.95)] < hold + 1.5


def test_no_sink_holds_back_once_the_spool_is_half_full(tmp_path: Path) -> None:
    """A hold must never bring the spool to its quota: the burst below is four times the quota, so a sink
    that held on past half of it would make the appends fail (SpoolFull)."""
    record = len(encode(SpoolBatch("acme", [event_pb2.Event(event_id="b-100-0").SerializeToString()] * 10)))
    small = Spool(tmp_path / "small", ["decision"], segment_bytes=4 * record, max_bytes=40 * record)
    sink = ArrivalSink("decision")
    forwarder = forwarder_to(small, sink, burst_rate=BURST_RATE, hold=5.0)
    try:
        sent, _, during = run_burst(small, forwarder, sink, 0.8, "b")
    finally:
        small.close()
    assert len(sent) > 4 * 40 * 10 * 0.5  # the burst was larger than the quota (at least two quotas' worth)
    assert sorted(sink.events()) == sorted(sent)
    assert during > len(sent) // 2


def test_the_intake_rate_is_the_count_over_about_the_last_half_second() -> None:
    now, count = [0.0], [0]
    rate = IntakeRate(lambda: count[0], clock=lambda: now[0])
    assert rate.per_second() == 0.0  # nothing seen yet
    now[0], count[0] = 0.05, 100
    assert rate.per_second() == 0.0  # too short a span to tell
    now[0], count[0] = 0.25, 500
    assert rate.per_second() == pytest.approx(2_000)
    for step in range(1, 11):  # a steady 1,000 a second for a second, asked every tenth
        now[0], count[0] = 0.25 + step / 10, 500 + step * 100
        rate.per_second()
    assert rate.per_second() == pytest.approx(1_000)
    now[0] += 2.0  # two quiet seconds, asked once at the end: nothing came
    assert rate.per_second() == 0.0
    now[0], count[0] = now[0] + 0.2, count[0] + 10_000  # a burst: 10,000 in the last half second
    assert rate.per_second() == pytest.approx(20_000)
    now[0], count[0] = now[0] + 0.3, count[0] + 15_000  # and 15,000 more: all 25,000 in the window
    assert rate.per_second() == pytest.approx(50_000)
