"""The spool lag the forwarder publishes per sink (`ingest.spool.lag`, `ingest.spool.backlog`): a sink that
is stuck shows its backlog and a lag at least as old as its oldest undelivered event, while a sink that took
everything shows none; once the stuck sink catches up, its lag and backlog are back at zero."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.forwarder import Forwarder
from wayline_ingest.spool import Spool, SpoolBatch


class GatedSink:
    """A sink that takes events only while its gate is open (a downstream service that hangs)."""

    def __init__(self, name: str, open_gate: bool) -> None:
        self.name = name
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.taken = 0

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        self.gate.wait(30)
        self.taken += len(events)

    def close(self) -> None:
        self.gate.set()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", ["journeys", "decision"], segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def lags(forwarder: Forwarder) -> dict[str, tuple[int, float]]:
    return {sink: (backlog, lag) for sink, backlog, lag in forwarder.lag()}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_stuck_sink_lags_by_its_oldest_event_and_a_caught_up_one_not_at_all(spool: Spool) -> None:
    journeys, decision = GatedSink("journeys", open_gate=True), GatedSink("decision", open_gate=False)
    forwarder = Forwarder(
        spool, [journeys, decision], policy=DeliveryPolicy(), dead_letters=None, max_write_bytes=1 << 20
    )
    forwarder.start()
    try:
        time.sleep(0.6)  # both idle: the marks say both are caught up
        assert lags(forwarder) == {"journeys": (0, 0.0), "decision": (0, 0.0)}
        appended = time.monotonic()
        spool.append(SpoolBatch("acme", [b"first"]), timeout=10)
        wait_until(lambda: journeys.taken == 1 and lags(forwarder)["journeys"][0] == 0)
        time.sleep(0.5)
        spool.append(SpoolBatch("acme", [b"second"]), timeout=10)
        wait_until(lambda: journeys.taken == 2 and lags(forwarder)["journeys"][0] == 0)
        elapsed = time.monotonic() - appended
        now = lags(forwarder)
        assert now["journeys"] == (0, 0.0)
        backlog, lag = now["decision"]
        assert backlog > 0
        # The first event waits since `appended`: the lag is at least that old, never younger.
        assert lag >= elapsed
        decision.gate.set()
        wait_until(lambda: decision.taken == 2 and lags(forwarder)["decision"] == (0, 0.0))
    finally:
        forwarder.stop()
