"""Segment's `integrations` honoured for the suite's own sinks (ADR 109): the rule for each value, the
intake's mark on the spool records that need reading, and the forwarder handing each sink only the events
that did not turn it off, in order, the journey store every one."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from tests.events import make_event
from tests.ingest.test_pipeline import pipeline
from wayline.event.v1 import event_pb2
from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.destinations import deselected, excluded_sinks
from wayline_ingest.forwarder import Forwarder
from wayline_ingest.spool import Spool, SpoolBatch

SINKS = ("journeys", "decision", "orchestrator")


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


@pytest.mark.parametrize(
    ("integrations", "off"),
    [
        ({}, set()),
        ({"Mixpanel": False}, set()),  # another tool's key selects nothing here
        ({"All": False}, {"decision", "orchestrator"}),
        ({"All": False, "orchestrator": True}, {"decision"}),
        ({"All": False, "decision": {"model": "offers"}}, {"orchestrator"}),  # options turn a sink on
        ({"decision": False}, {"decision"}),
        ({"All": True, "orchestrator": False}, {"orchestrator"}),
        ({"All": False, "journeys": False}, {"decision", "orchestrator"}),  # the store keeps every event
        ({"All": "no", "Decision": False}, set()),  # not a boolean; keys are case-sensitive
        ({"All": False, "decision": None, "orchestrator": 1}, {"decision", "orchestrator"}),
    ],
)
def test_each_sink_follows_its_own_key_then_all(integrations: dict[str, Any], off: set[str]) -> None:
    assert excluded_sinks(_struct(integrations)) == off
    event = make_event("u-1")
    event.integrations.CopyFrom(_struct(integrations))
    assert deselected(event.SerializeToString()) == off


def test_an_event_without_integrations_turns_nothing_off() -> None:
    assert deselected(make_event("u-1").SerializeToString()) == set()


def test_the_intake_marks_a_record_whose_events_select(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    plain = make_event("u-1")
    empty = make_event("u-2")
    empty.integrations.SetInParent()  # `{}`, as some libraries send: nothing to read
    selecting = make_event("u-3")
    selecting.integrations.update({"All": False})
    derived = make_event("u-4")
    derived.integrations.update({"decision": False})
    derived.event_id = ""  # the Python path's, which derives the id
    for events, marked in (([plain, empty], False), ([plain, selecting], True), ([derived], True)):
        wire = [event.SerializeToString() for event in events]
        checked = p.check_wire("acme", wire, lambda i: f"events[{i}]", backfill=False)
        assert not checked.rejections
        assert checked.selects is marked
        p.settle(checked, timeout=10)
    assert [batch.selects for batch in p.spool.batches()] == [False, True, True]
    p.spool.close()


class RecordingSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[list[str]] = []

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        self.calls.append([event_pb2.Event.FromString(e).event_id for e in events])

    def close(self) -> None:
        return None

    @property
    def ids(self) -> list[str]:
        return [event_id for call in self.calls for event_id in call]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", list(SINKS), segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def _event(event_id: str, integrations: dict[str, Any] | None = None) -> bytes:
    event = event_pb2.Event(event_id=event_id, name="Decision Logged")
    if integrations is not None:
        event.integrations.update(integrations)
    return event.SerializeToString()


def test_each_sink_gets_the_events_that_did_not_turn_it_off_in_order(spool: Spool) -> None:
    records = [
        SpoolBatch(
            "acme", [_event("a"), _event("b", {"All": False}), _event("c", {"decision": False})], selects=True
        ),
        SpoolBatch("acme", [_event("d", {"All": False})], selects=True),  # nothing for two sinks: no call
        SpoolBatch("acme", [_event("e")]),
        # Unmarked (written before the mark existed): delivered everywhere, as before.
        SpoolBatch("acme", [_event("f", {"All": False})]),
    ]
    for record in records:
        spool.append(record, timeout=10)
    sinks = {name: RecordingSink(name) for name in SINKS}
    forwarder = Forwarder(
        spool, list(sinks.values()), policy=DeliveryPolicy(), dead_letters=None, max_write_bytes=64
    )
    forwarder.start()
    try:
        deadline = time.monotonic() + 20
        while len(sinks["journeys"].ids) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # time for a wrong delivery to the others to show
    finally:
        forwarder.stop()
    assert sinks["journeys"].ids == ["a", "b", "c", "d", "e", "f"]
    assert sinks["decision"].ids == ["a", "e", "f"]
    assert sinks["orchestrator"].ids == ["a", "c", "e", "f"]
    assert all(call for sink in sinks.values() for call in sink.calls)  # never a call without events
    for name in SINKS:  # every cursor past the last record: nothing is delivered again
        assert spool.position(name) == spool.log.end
