"""The forwarder prepares each spool record once for all its sinks (the backfill flag, enrichment), and every
sink gets the same bytes objects, which the identity resolver's cache then finds without hashing them again.
Before, each of the three sinks flagged and enriched every event again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from wayline.event.v1 import event_pb2
from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.forwarder import Forwarder, PreparedRecords
from wayline_ingest.spool import Spool, SpoolBatch

SINKS = ("journeys", "decision", "orchestrator")


def raw(event_id: str, name: str = "Product Viewed") -> bytes:
    return event_pb2.Event(event_id=event_id, name=name).SerializeToString()


class Shouting:
    """An enrichment that upper-cases event names and counts the events it was given."""

    def __init__(self) -> None:
        self.events = 0
        self.lock = threading.Lock()

    def __call__(self, events: Sequence[bytes]) -> list[bytes]:
        with self.lock:
            self.events += len(events)
        out = []
        for payload in events:
            event = event_pb2.Event.FromString(payload)
            event.name = event.name.upper()
            out.append(event.SerializeToString())
        return out


def test_a_record_is_prepared_once_and_every_sink_gets_the_same_objects() -> None:
    transform = Shouting()
    prepared = PreparedRecords(transform)
    batch = SpoolBatch("acme", [raw("e-1"), raw("e-2")], backfill=True)
    first = prepared.events(100, batch)
    assert all(prepared.events(100, batch) is first for _ in SINKS[1:])
    assert transform.events == 2
    events = [event_pb2.Event.FromString(payload) for payload in first]
    assert [(e.event_id, e.name, e.backfill) for e in events] == [
        ("e-1", "PRODUCT VIEWED", True),
        ("e-2", "PRODUCT VIEWED", True),
    ]


def test_records_past_the_bound_are_prepared_again_by_a_sink_that_far_behind() -> None:
    transform = Shouting()
    event_bytes = len(raw("e-0")) + 2  # the backfill flag adds a tag and a value
    prepared = PreparedRecords(transform, max_bytes=2 * event_bytes)
    oldest = SpoolBatch("acme", [raw("e-0")])
    kept = prepared.events(10, oldest)
    for position in (20, 30):  # two newer records push the oldest out
        prepared.events(position, SpoolBatch("acme", [raw(f"e-{position}")]))
    assert transform.events == 3
    again = prepared.events(10, oldest)
    assert transform.events == 4
    assert again == kept
    assert again is not kept
    assert prepared.events(30, SpoolBatch("acme", [raw("e-30")])) is prepared.events(30, oldest)  # still kept


def test_two_sinks_preparing_one_record_at_once_end_up_with_the_same_objects() -> None:
    both_inside = threading.Barrier(2)

    def slow(events: Sequence[bytes]) -> list[bytes]:
        both_inside.wait(10)  # each sink's thread is making the record when the other starts
        return list(events)

    prepared = PreparedRecords(slow)
    batch = SpoolBatch("acme", [raw("e-1")])
    results: list[list[bytes]] = []
    threads = [threading.Thread(target=lambda: results.append(prepared.events(7, batch))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    assert results[0] is results[1]


class RecordingSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[bytes] = []

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        self.events.extend(events)

    def close(self) -> None:
        return None


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", list(SINKS), segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def test_every_sink_gets_every_event_enriched_and_flagged_in_order(spool: Spool) -> None:
    sinks = [RecordingSink(name) for name in SINKS]
    transform = Shouting()
    sent = [[raw(f"e-{record}-{n}", name="Cart Viewed") for n in range(3)] for record in range(20)]
    for record, events in enumerate(sent):
        spool.append(SpoolBatch("acme", events, backfill=record % 2 == 1), timeout=10)
    forwarder = Forwarder(
        spool, sinks, policy=DeliveryPolicy(), dead_letters=None, max_write_bytes=1 << 20, transform=transform
    )
    forwarder.start()
    try:
        deadline = time.monotonic() + 20
        while any(len(sink.events) < 60 for sink in sinks) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        forwarder.stop()
    expected = [(f"e-{record}-{n}", "CART VIEWED", record % 2 == 1) for record in range(20) for n in range(3)]
    for sink in sinks:
        received = [event_pb2.Event.FromString(payload) for payload in sink.events]
        assert [(e.event_id, e.name, e.backfill) for e in received] == expected, sink.name
    # Each record enriched once, or twice when two sinks' threads reached it at the same moment; before,
    # once per sink, every time.
    assert transform.events < len(SINKS) * 60
