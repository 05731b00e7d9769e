"""The forwarder's linger per sink: the journey store waits to gather a larger INSERT, decision does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.forwarder import Forwarder
from wayline_ingest.spool import Spool, SpoolBatch

JOURNEYS_LINGER = 0.4


class ArrivalSink:
    """A sink that notes when each delivery arrives (the deliveries themselves are the forwarder's)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.arrivals: list[tuple[float, int]] = []
        self.delivered = threading.Event()

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        self.arrivals.append((time.monotonic(), len(events)))
        self.delivered.set()

    def close(self) -> None:
        return None


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", ["journeys", "decision"], segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def test_each_sink_lingers_for_its_own_time(spool: Spool) -> None:
    journeys, decision = ArrivalSink("journeys"), ArrivalSink("decision")
    forwarder = Forwarder(
        spool,
        [journeys, decision],
        policy=DeliveryPolicy(),
        dead_letters=None,
        max_write_bytes=1 << 20,
        linger=0.0,
        linger_by_sink={"journeys": JOURNEYS_LINGER},
    )
    forwarder.start()
    try:
        time.sleep(0.2)  # both sinks idle, waiting on the spool
        appended = time.monotonic()
        spool.append(SpoolBatch("acme", [b"first"]), timeout=10)
        time.sleep(0.05)
        spool.append(SpoolBatch("acme", [b"second"]), timeout=10)
        assert journeys.delivered.wait(10)
        assert decision.delivered.wait(10)
        time.sleep(0.3)
    finally:
        forwarder.stop()
    # Journeys waited its linger and took both events in one write; decision got the first one at once.
    assert journeys.arrivals[0][0] - appended >= JOURNEYS_LINGER
    assert journeys.arrivals == [(journeys.arrivals[0][0], 2)]
    assert decision.arrivals[0][0] < journeys.arrivals[0][0]
    assert sum(count for _, count in decision.arrivals) == 2
