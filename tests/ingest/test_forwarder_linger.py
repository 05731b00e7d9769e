"""The forwarder's linger per sink: the least time between two small writes. The journey store gathers a
trickle into one INSERT a linger; decision gets events at once; an event after a quiet spell goes at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.forwarder import Forwarder
from wayline_ingest.spool import Spool, SpoolBatch

# The real default. The trickle below takes ~0.15 s on a quiet machine; with the suite's other files on the
# other workers (fsync-heavy durability tests among them) its appends took over 0.4 s once and split it.
JOURNEYS_LINGER = 1.0
# The linger spaces the starts of two writes; a sink sees each arrive after its records were prepared, which
# took up to a few milliseconds more for one write than the other (a fresh clone's run measured 0.9996 s).
ARRIVAL_JITTER = 0.05


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


def forwarder_to(spool: Spool, *sinks: ArrivalSink, max_write_bytes: int = 1 << 20) -> Forwarder:
    return Forwarder(
        spool,
        list(sinks),
        policy=DeliveryPolicy(),
        dead_letters=None,
        max_write_bytes=max_write_bytes,
        linger=0.0,
        linger_by_sink={"journeys": JOURNEYS_LINGER},
    )


def test_a_trickle_goes_in_one_write_a_linger_and_a_quiet_sinks_first_event_at_once(spool: Spool) -> None:
    journeys, decision = ArrivalSink("journeys"), ArrivalSink("decision")
    forwarder = forwarder_to(spool, journeys, decision)
    forwarder.start()
    try:
        time.sleep(0.2)  # both sinks idle, waiting on the spool
        appended = time.monotonic()
        spool.append(SpoolBatch("acme", [b"first"]), timeout=10)
        assert journeys.delivered.wait(10)
        for n in range(3):  # a trickle right after it
            time.sleep(0.05)
            spool.append(SpoolBatch("acme", [f"more-{n}".encode()]), timeout=10)
        deadline = time.monotonic() + 10
        while sum(count for _, count in journeys.arrivals) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        forwarder.stop()
    # The first event after a quiet spell went at once; the trickle after it waited out the linger from that
    # write and went in one write.
    assert [count for _, count in journeys.arrivals] == [1, 3]
    assert journeys.arrivals[0][0] - appended < JOURNEYS_LINGER
    assert journeys.arrivals[1][0] - journeys.arrivals[0][0] >= JOURNEYS_LINGER - ARRIVAL_JITTER
    # Decision (no linger) got every event as it came.
    assert sum(count for _, count in decision.arrivals) == 4
    assert decision.arrivals[-1][0] < journeys.arrivals[1][0]


def test_less_than_a_full_write_waits_and_a_full_write_goes_at_once(spool: Spool) -> None:
    """A sink that pays per write waits for a full one: a quarter of a write is still a small write."""
    journeys = ArrivalSink("journeys")
    forwarder = forwarder_to(spool, journeys, ArrivalSink("decision"), max_write_bytes=64 * 1024)
    forwarder.start()
    try:
        time.sleep(0.2)  # idle, waiting on the spool
        spool.append(SpoolBatch("acme", [b"first"]), timeout=10)
        assert journeys.delivered.wait(10)
        journeys.delivered.clear()
        spool.append(SpoolBatch("acme", [b"a" * 40_000]), timeout=10)  # over a quarter of a write
        assert journeys.delivered.wait(10)
        waited = journeys.arrivals[1][0] - journeys.arrivals[0][0]
        journeys.delivered.clear()
        appended = time.monotonic()
        for part in (b"b", b"c", b"d"):  # over a full write in all, in records of less than half of one
            spool.append(SpoolBatch("acme", [part * 30_000]), timeout=10)
        assert journeys.delivered.wait(10)
        went = journeys.arrivals[2][0] - appended
    finally:
        forwarder.stop()
    assert waited >= JOURNEYS_LINGER - ARRIVAL_JITTER
    assert went < JOURNEYS_LINGER
    assert [count for _, count in journeys.arrivals] == [1, 1, 2]  # each write under 64 KiB; the last waits


def test_a_sink_far_behind_catches_up_in_larger_writes_and_then_writes_full_writes(tmp_path: Path) -> None:
    """The journey store catches up from a backlog in large writes (chDB pays per INSERT); once it keeps up
    its writes are full writes again; decision, without a catch-up size, takes full writes throughout."""
    spool = Spool(tmp_path / "sized", ["journeys", "decision"], segment_bytes=1 << 20, max_bytes=1 << 30)
    journeys, decision = ArrivalSink("journeys"), ArrivalSink("decision")
    for record in range(12):  # 12 x 16 KB, before the forwarder starts: a catch-up write and a full write
        spool.append(SpoolBatch("acme", [bytes([record]) * 4_000] * 4), timeout=10)
    forwarder = Forwarder(
        spool,
        [journeys, decision],
        policy=DeliveryPolicy(),
        dead_letters=None,
        max_write_bytes=64 * 1024,
        linger=0.0,
        catch_up_write_bytes_by_sink={"journeys": 128 * 1024},
    )
    forwarder.start()

    def wait_for(total: int) -> None:
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and min(sum(n for _, n in sink.arrivals) for sink in (journeys, decision)) < total
        ):
            time.sleep(0.02)

    try:
        wait_for(48)
        caught_up = len(journeys.arrivals)
        for record in range(4):  # then less than a catch-up write behind: full writes again
            spool.append(SpoolBatch("acme", [bytes([record]) * 4_000] * 8), timeout=10)
        wait_for(80)
    finally:
        forwarder.stop()
        spool.close()
    assert [count for _, count in journeys.arrivals[:caught_up]] == [32, 16]  # 128 KB at once, then the rest
    assert max(count for _, count in journeys.arrivals[caught_up:]) <= 16  # 64 KiB writes
    assert sum(count for _, count in journeys.arrivals) == 80
    assert [count for _, count in decision.arrivals[:3]] == [16, 16, 16]
    assert max(count for _, count in decision.arrivals) == 16
