"""The C fast path (`wire.py`, `_wire.c`) held to the Python checks it stands in for.

It may only vouch for an event the Python checks accept, and what it stamps must parse to exactly what the
Python stamp makes. It must never vouch for bytes the protobuf runtime cannot parse, whatever they are.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.events import make_event
from tests.ingest.test_pipeline import LIMITS, mutate, mutations
from tests.wire_bytes import field
from wayline.common.errors import InvalidArgument
from wayline.common.timestamps import to_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_rules_pb2, person_override_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.spool import Spool
from wayline_ingest.validation import stamp, validate_event
from wayline_ingest.wire import (
    apply_resolution,
    check_events,
    has_identifiers,
    needs_enrichment,
    person_overrides_request,
    read_resolutions,
    read_stream_request,
    read_track_batch,
    resolution_request,
    well_formed,
    with_backfill,
)

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def fast(raw: bytes, backfill: bool = False, received: datetime = NOW) -> tuple[str, bytes, bool] | None:
    (result,) = check_events(
        [raw],
        to_micros(received) * 1000,
        LIMITS.floor_seconds(backfill),
        LIMITS.future_skew_nanos,
        LIMITS.max_event_bytes,
    )
    return result


def python_stamped(raw: bytes, backfill: bool = False) -> event_pb2.Event | None:
    """What the Python checks make of `raw`; None when they refuse it."""
    event = event_pb2.Event.FromString(raw)
    if validate_event(event, "event", LIMITS, backfill=backfill):
        return None
    if not event.event_id:
        return None  # the derived id is the Python path's job, never the fast path's
    if stamp("acme", event, "event", NOW, LIMITS, backfill=backfill):
        return None
    return event


def rich_event() -> event_pb2.Event:
    """An event using most of the schema: properties nested in lists and structs, context, text."""
    event = make_event("u-1", at=NOW - timedelta(minutes=3))
    event.identifiers.add(type="email", value="Ann@Example.com")
    event.properties.update({"sku": "SKU-1", "price": 19.99, "tags": ["a", 1, None, {"deep": True}]})
    event.context.user_agent = "Mozilla/5.0 (X11; Linux x86_64)"
    event.context.page.url = "https://shop.example/ü"
    event.context.extra.update({"ab": {"variant": "B"}})
    event.text = "très bien, merci"
    return event


timing = st.sampled_from(["timestamp", "sent_at", "no_timestamp", "original_only", "both_sent"])


def apply_timing(event: event_pb2.Event, kind: str) -> None:
    if kind == "sent_at":
        event.sent_at.CopyFrom(to_timestamp(NOW - timedelta(seconds=90)))
    elif kind == "no_timestamp":
        event.ClearField("timestamp")
    elif kind == "original_only":
        event.ClearField("timestamp")
        event.original_timestamp.CopyFrom(to_timestamp(NOW - timedelta(days=1)))
    elif kind == "both_sent":
        event.original_timestamp.CopyFrom(to_timestamp(NOW - timedelta(days=1)))
        event.sent_at.CopyFrom(to_timestamp(NOW + timedelta(minutes=2)))


@settings(max_examples=examples(300), deadline=None)
@given(kinds=mutations, when=timing, rich=st.booleans(), backfill=st.booleans())
def test_a_vouched_event_is_exactly_what_the_python_checks_make(
    kinds: list[str], when: str, rich: bool, backfill: bool
) -> None:
    event = rich_event() if rich else make_event("u-1", at=NOW - timedelta(seconds=5))
    mutate(event, kinds)
    apply_timing(event, when)
    raw = event.SerializeToString()
    expected = python_stamped(raw, backfill)
    vouched = fast(raw, backfill)
    if vouched is None:
        # Refusing is always safe; but a plain valid event must take the fast path, or it is useless.
        ordinary = set(kinds) <= {"fine"} and when != "original_only"
        assert expected is None or not ordinary
        return
    assert expected is not None, "the fast path vouched for an event the Python checks refuse"
    event_id, stamped, selects = vouched
    assert event_id == expected.event_id
    assert event_pb2.Event.FromString(stamped) == expected
    assert selects == bool(expected.integrations.fields)


def test_the_fast_path_takes_ordinary_events() -> None:
    """Guards the test above against a fast path that never says yes."""
    for event in (make_event("u-1", at=NOW), rich_event()):
        assert fast(event.SerializeToString()) is not None


def test_the_fast_path_says_which_events_select_destinations() -> None:
    """Only an `integrations` with entries makes the forwarder read it (ADR 109); an empty one, as some
    libraries send, does not."""
    event = make_event("u-1", at=NOW)
    selects = []
    for change in ("none", "empty", "entries"):
        if change == "empty":
            event.integrations.SetInParent()  # present, empty
        elif change == "entries":
            event.integrations.update({"All": False, "journeys": True})
        vouched = fast(event.SerializeToString())
        assert vouched is not None
        selects.append(vouched[2])
    assert selects == [False, False, True]


@settings(max_examples=examples(500), deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 10_000),
    insert=st.booleans(),
)
def test_bytes_the_runtime_cannot_parse_are_never_vouched_for(
    edits: list[tuple[int, int]], cut: int, insert: bool
) -> None:
    raw = bytearray(rich_event().SerializeToString())
    for position, byte in edits:
        if insert:
            raw.insert(position % (len(raw) + 1), byte)
        else:
            raw[position % len(raw)] = byte
    if cut % 3 == 0:
        del raw[cut % len(raw) :]
    data = bytes(raw)
    vouched = fast(data)
    try:
        parsed = event_pb2.Event.FromString(data)
    except DecodeError:
        assert vouched is None
        assert not well_formed(data)
        return
    if vouched is not None:
        assert validate_event(parsed, "event", LIMITS) == []
        event_pb2.Event.FromString(vouched[1])  # what goes to the spool parses too


@pytest.mark.parametrize(
    ("tail", "parses"),
    [
        (field(3, 2, b"\xff\xfe"), False),  # a name that is not UTF-8 (the last name wins)
        (field(9, 2, field(1, 2, field(1, 2, b"k") + field(2, 2, field(3, 2, b"\xc0\xaf")))), False),
        (field(10, 2, field(1, 2, field(2, 2, b"\xed\xa0\x80"))), False),  # a surrogate, in context
        (field(99, 0, b"\x01"), True),  # a field this version does not know
        (field(2, 0, b"\x03"), True),  # the type twice: the last one wins
        (field(1, 0, b"\x05"), True),  # the event id with the wrong wire type
    ],
)
def test_odd_bytes_go_to_the_python_path(tail: bytes, parses: bool) -> None:
    data = make_event("u-1", at=NOW).SerializeToString() + tail
    assert fast(data) is None
    try:
        event_pb2.Event.FromString(data)
    except DecodeError:
        assert not parses
    else:
        assert parses


def test_nesting_beyond_the_bound_goes_to_the_python_path() -> None:
    event = make_event("u-1", at=NOW)
    value = struct_pb2.Value(string_value="leaf")
    for _ in range(40):
        value = struct_pb2.Value(list_value=struct_pb2.ListValue(values=[value]))
    event.properties.fields["deep"].CopyFrom(value)
    assert fast(event.SerializeToString()) is None
    assert python_stamped(event.SerializeToString()) is not None


def test_only_canonical_uuids_and_ascii_values_are_vouched_for() -> None:
    """The forms the fast path leaves to Python: braced or hyphen-less ids, values it cannot judge."""
    for event_id in ("{" + str(uuid.uuid4()) + "}", uuid.uuid4().hex, "urn:uuid:" + str(uuid.uuid4())):
        event = make_event("u-1", at=NOW)
        event.event_id = event_id
        assert fast(event.SerializeToString()) is None
        assert python_stamped(event.SerializeToString()) is not None
    event = make_event("\u3000\u3000", at=NOW)  # ideographic spaces only: Python refuses it
    assert fast(event.SerializeToString()) is None
    assert python_stamped(event.SerializeToString()) is None
    event = make_event("名前", at=NOW)
    assert fast(event.SerializeToString()) is None
    assert python_stamped(event.SerializeToString()) is not None


@given(
    sequence=st.integers(0, 2**62),
    backfill=st.booleans(),
    count=st.integers(0, 5),
)
def test_the_envelope_is_read_as_the_runtime_reads_it(sequence: int, backfill: bool, count: int) -> None:
    events = [make_event(f"u-{i}", at=NOW) for i in range(count)]
    request = ingest_pb.StreamEventsRequest(sequence=sequence, events=events, backfill=backfill)
    data = request.SerializeToString()
    batch = read_stream_request(data)
    assert (batch.sequence, batch.backfill, batch.size) == (sequence, backfill, len(data))
    assert [event_pb2.Event.FromString(e) for e in batch.events] == events
    track = read_track_batch(
        ingest_pb.TrackBatchRequest(events=events, backfill=backfill).SerializeToString()
    )
    assert (track.backfill, [event_pb2.Event.FromString(e) for e in track.events]) == (backfill, events)


def test_a_request_that_is_not_protobuf_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        read_stream_request(b"\x12\x7f" + b"short")
    assert caught.value.reason == "MALFORMED_REQUEST"


_directories = itertools.count()


def _fresh_directory(factory: pytest.TempPathFactory) -> Path:
    """A new directory named by a counter (mktemp's random names trouble hypothesis)."""
    directory = factory.getbasetemp() / f"wire-spool-{next(_directories)}"
    directory.mkdir()
    return directory


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.tuples(mutations, timing), min_size=1, max_size=8), garbage=st.booleans())
def test_check_wire_answers_as_the_python_path_does(
    tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[list[str], str]], garbage: bool
) -> None:
    """The same calls through `check_wire` and `check` give the same ids, rejections and stored events."""
    events = []
    for kinds, when in batch:
        event = rich_event()
        mutate(event, kinds)
        apply_timing(event, when)
        events.append(event)
    events.append(events[0])  # a repeat within the call is acknowledged once
    raws = [e.SerializeToString() for e in events]
    if garbage:
        raws.insert(1, raws[0] + field(3, 2, b"\xff"))

    def run(wire: bool) -> tuple[list[str], list[tuple[int, list[str]]], list[event_pb2.Event]]:
        spool = Spool(
            _fresh_directory(tmp_path_factory), ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30
        )
        pipeline = Pipeline(LIMITS, spool, DedupWindow(1000), clock=lambda: NOW)
        if wire:
            checked = pipeline.check_wire("acme", raws, lambda i: f"events[{i}]", False)
        else:
            parsed = []
            for raw in raws:
                try:
                    parsed.append(event_pb2.Event.FromString(raw))
                except DecodeError:
                    parsed.append(event_pb2.Event())  # stands in for the malformed one: refused too
            checked = pipeline.check("acme", parsed, lambda i: f"events[{i}]", False)
        pipeline.settle(checked)
        stored = [event_pb2.Event.FromString(e) for b in spool.batches() for e in b.events]
        spool.close()
        rejected = [(r.index, [v.field for v in r.violations]) for r in checked.rejections]
        return checked.accepted_ids, rejected, stored

    wire_ids, wire_rejected, wire_stored = run(True)
    python_ids, python_rejected, python_stored = run(False)
    assert wire_ids == python_ids
    assert wire_stored == python_stored
    assert [index for index, _ in wire_rejected] == [index for index, _ in python_rejected]
    for (index, fields), (_, expected) in zip(wire_rejected, python_rejected, strict=True):
        if garbage and index == 1:
            assert fields == ["events[1]"]  # MALFORMED, named by the event's path
        else:
            assert fields == expected


# The identity sink's field surgery, held to what the Python messages make.

identifiers = st.lists(
    st.builds(
        event_pb2.Identifier, type=st.sampled_from(["email", "user_id", "phone"]), value=st.text(max_size=8)
    ),
    max_size=3,
)


@settings(max_examples=examples(200), deadline=None)
@given(
    person=st.text(max_size=6),
    normalised=identifiers,
    ignored=st.lists(st.one_of(st.none(), identifiers.map(lambda ids: ids[0] if ids else None)), max_size=3),
    sent_person=st.booleans(),
)
def test_a_resolution_is_applied_as_the_messages_apply_it(
    person: str,
    normalised: list[event_pb2.Identifier],
    ignored: list[event_pb2.Identifier | None],
    sent_person: bool,
) -> None:
    event = rich_event()
    if sent_person:
        event.person_id = "stale"
    resolution = identity_pb.IdentityResolution(index=0, event_id=event.event_id, person_id=person)
    resolution.identifiers.extend(normalised)
    for identifier in ignored:
        entry = resolution.ignored_identifiers.add(reason=identity_rules_pb2.IGNORE_REASON_LIMIT_REACHED)
        if identifier is not None:
            entry.identifier.CopyFrom(identifier)
    expected = event_pb2.Event()
    expected.CopyFrom(event)
    expected.person_id = resolution.person_id
    del expected.identifiers[:]
    expected.identifiers.extend(
        [*resolution.identifiers, *(i.identifier for i in resolution.ignored_identifiers)]
    )
    applied = apply_resolution(event.SerializeToString(), resolution.SerializeToString())
    assert event_pb2.Event.FromString(applied) == expected


def test_requests_are_projected_and_answers_read_as_the_messages_do() -> None:
    events = [rich_event(), make_event("u-2", at=NOW)]
    events[1].type = event_pb2.EVENT_TYPE_IDENTIFY
    request = identity_pb.ResolveIdentitiesRequest.FromString(
        resolution_request([e.SerializeToString() for e in events])
    )
    assert list(request.inputs) == [
        identity_pb.IdentityResolutionInput(
            event_id=e.event_id, timestamp=e.timestamp, event_type=e.type, identifiers=e.identifiers
        )
        for e in events
    ]
    override = person_override_pb2.PersonOverride(person_id="p-2", override_person_id="p-1", version=3)
    response = identity_pb.ResolveIdentitiesResponse(
        resolutions=[identity_pb.IdentityResolution(index=i, person_id=f"p-{i}") for i in range(2)],
        person_overrides=[override],
    )
    answer = read_resolutions(response.SerializeToString())
    assert [identity_pb.IdentityResolution.FromString(r) for r in answer.resolutions] == list(
        response.resolutions
    )
    assert journeys_pb.ApplyPersonOverridesRequest.FromString(
        person_overrides_request(answer.person_overrides)
    ) == journeys_pb.ApplyPersonOverridesRequest(person_overrides=[override])
    assert has_identifiers(events[0].SerializeToString())
    assert not has_identifiers(event_pb2.Event(event_id="x").SerializeToString())


def test_only_events_with_a_user_agent_or_a_text_are_enriched() -> None:
    plain = make_event("u-1", at=NOW)
    with_agent = make_event("u-1", at=NOW)
    with_agent.context.user_agent = "Mozilla/5.0"
    with_text = make_event("u-1", at=NOW)
    with_text.text = "great"
    empty_context = make_event("u-1", at=NOW)
    empty_context.context.locale = "fr-FR"
    assert [
        needs_enrichment(e.SerializeToString()) for e in (plain, with_agent, with_text, empty_context)
    ] == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("sent", [None, False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_with_backfill_sets_the_batchs_flag_over_whatever_the_caller_sent(
    sent: bool | None, batch: bool
) -> None:
    event = event_pb2.Event(event_id="e-1", name="Order Completed")
    event.properties.update({"total": 9.5})
    if sent is not None:
        event.backfill = sent
    marked = event_pb2.Event.FromString(with_backfill(event.SerializeToString(), batch))
    assert marked.backfill is batch
    marked.backfill = event.backfill
    assert marked == event  # nothing else changed
