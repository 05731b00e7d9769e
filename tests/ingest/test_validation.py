"""Validation and stamping at the door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from tests.events import make_event
from wayline.common.errors import FieldViolation
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline_ingest.validation import EventLimits, derive_event_id, stamp, validate_event

LIMITS = EventLimits(
    max_event_bytes=2048,
    max_future_skew=timedelta(hours=1),
    min_timestamp=datetime(2000, 1, 1, tzinfo=UTC),
    backfill_min_timestamp=datetime(1900, 1, 1, tzinfo=UTC),
)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def fields(event: event_pb2.Event, backfill: bool = False) -> list[str]:
    return [v.field for v in validate_event(event, "event", LIMITS, backfill=backfill)]


def enrich(event: event_pb2.Event, path: str, now: datetime, limits: EventLimits) -> list[FieldViolation]:
    return list(stamp("acme", event, path, now, limits))


def test_a_well_formed_event_passes() -> None:
    assert fields(make_event("u1")) == []


def test_each_problem_is_named_by_its_path() -> None:
    event = make_event("u1")
    event.type = event_pb2.EVENT_TYPE_UNSPECIFIED
    event.identifiers.add(type="Bad Type", value="x")
    event.identifiers.add(type="email", value=" ")
    assert fields(event) == ["event.type", "event.identifiers[1].type", "event.identifiers[2].value"]


def test_numbers_json_cannot_hold_are_refused_with_their_paths() -> None:
    """NaN and Infinity in any JSON-like field (the journey store keeps them as JSON): once refused here,
    never acknowledged and then refused by a sink."""
    event = make_event("u1")
    event.properties.update({"price": float("nan"), "ok": 2.5, "tags": ["a", {"w": float("inf")}]})
    event.integrations.update({"All": True})
    event.context.extra.update({"ratio": float("-inf")})
    event.context.traits.update({"age": 41})
    found = validate_event(event, "events[3]", LIMITS)
    assert [(v.field, v.reason) for v in found] == [
        ("events[3].properties.price", "OUT_OF_RANGE"),
        ("events[3].properties.tags[1].w", "OUT_OF_RANGE"),
        ("events[3].context.extra.ratio", "OUT_OF_RANGE"),
    ]
    assert "finite" in found[0].description
    for finite in (event.properties, event.context.extra):
        finite.update({"price": 1.0, "tags": ["a"], "ratio": -1e308})
    assert fields(event) == []


def test_an_event_over_the_size_limit_is_refused_whole_with_its_path() -> None:
    event = make_event("u1")
    event.properties.update({"blob": "y" * 2000})
    violations = validate_event(event, "events[3]", LIMITS)
    assert [(v.field, v.reason) for v in violations] == [("events[3]", "TOO_LARGE")]


def test_live_events_stop_at_2000_and_backfill_reaches_further() -> None:
    old = make_event("u1", at=datetime(1987, 5, 4, tzinfo=UTC))
    assert fields(old) == ["event.timestamp"]
    assert fields(old, backfill=True) == []
    ancient = make_event("u1", at=datetime(1850, 1, 1, tzinfo=UTC))
    assert fields(ancient, backfill=True) == ["event.timestamp"]


def test_fields_only_wayline_sets_are_refused_from_callers() -> None:
    event = make_event("u1")
    event.person_id = "p1"
    event.sentiment_score = 0.4
    event.plan_violations.add(field="properties.price")
    assert fields(event) == ["event.person_id", "event.plan_violations", "event.sentiment_score"]


def test_group_events_need_a_group_and_revenue_needs_a_currency() -> None:
    event = make_event("u1")
    event.type = event_pb2.EVENT_TYPE_GROUP
    event.revenue.CopyFrom(event_pb2.Money(currency_code="euro", units=5, nanos=-1))
    assert fields(event) == ["event.group_id", "event.revenue.currency_code", "event.revenue.nanos"]


def test_track_needs_a_name_but_identify_does_not() -> None:
    track = make_event("u1", name="")
    identify = make_event("u1", name="")
    identify.type = event_pb2.EVENT_TYPE_IDENTIFY
    assert fields(track) == ["event.name"]
    assert fields(identify) == []


def test_stamp_fills_event_id_received_at_and_a_missing_timestamp() -> None:
    event = make_event("u1")
    event.event_id = ""
    event.ClearField("timestamp")
    assert enrich(event, "event", NOW, LIMITS) == []
    assert len(event.event_id) == 36
    assert to_datetime(event.received_at) == NOW
    assert to_datetime(event.timestamp) == NOW
    assert not event.HasField("original_timestamp")


def test_a_missing_event_id_is_derived_from_the_tenant_and_the_content() -> None:
    """A retry of the same call derives the same id; another tenant or another event another id."""
    event = make_event("u1")
    event.event_id = ""
    first, retry = event_pb2.Event(), event_pb2.Event()
    first.CopyFrom(event)
    retry.CopyFrom(event)
    enrich(first, "event", NOW, LIMITS)
    enrich(retry, "event", NOW + timedelta(hours=13), LIMITS)
    assert first.event_id == retry.event_id
    assert first.event_id == derive_event_id("acme", event)
    assert derive_event_id("globex", event) != first.event_id
    event.name = "Order Completed"
    assert derive_event_id("acme", event) != first.event_id


def test_the_senders_timestamp_is_kept_as_original_timestamp() -> None:
    event = make_event("u1", at=NOW - timedelta(minutes=5))
    event.sent_at.CopyFrom(to_timestamp(NOW - timedelta(minutes=3)))
    enrich(event, "event", NOW, LIMITS)
    assert to_datetime(event.original_timestamp) == NOW - timedelta(minutes=5)
    assert to_datetime(event.timestamp) == NOW - timedelta(minutes=2)


@given(
    happened_before_send=st.integers(min_value=0, max_value=86_400_000),
    device_clock_error=st.integers(min_value=-86_400_000, max_value=86_400_000),
    transit=st.integers(min_value=0, max_value=60_000),
)
def test_clock_skew_correction_recovers_the_true_time(
    happened_before_send: int, device_clock_error: int, transit: int
) -> None:
    """With a wrong device clock, timestamp and sent_at are both off by the same error; the corrected
    timestamp is the true time of the touchpoint up to the network transit time."""
    true_sent = NOW - timedelta(milliseconds=transit)
    true_happened = true_sent - timedelta(milliseconds=happened_before_send)
    error = timedelta(milliseconds=device_clock_error)
    event = make_event("u1")
    event.timestamp.CopyFrom(to_timestamp(true_happened + error))
    event.sent_at.CopyFrom(to_timestamp(true_sent + error))
    enrich(event, "event", NOW, LIMITS)
    assert to_datetime(event.timestamp) - true_happened == timedelta(milliseconds=transit)


def test_a_timestamp_far_in_the_future_is_refused() -> None:
    event = make_event("u1", at=NOW + timedelta(hours=2))
    assert [v.reason for v in enrich(event, "event", NOW, LIMITS)] == ["FUTURE_TIMESTAMP"]


def test_a_sent_at_far_ahead_cannot_move_the_timestamp_before_the_floor() -> None:
    """A device clock 40 years fast sends `sent_at` 40 years ahead of a true `timestamp`: the correction
    (received_at - sent_at) would date the touchpoint 40 years back, before 2000 (live) or 1900 (backfill)."""
    event = make_event("u1", at=NOW - timedelta(minutes=1))
    event.sent_at.CopyFrom(to_timestamp(NOW + timedelta(days=365 * 40)))
    refused = enrich(event, "event", NOW, LIMITS)
    assert [(v.field, v.reason) for v in refused] == [("event.timestamp", "OUT_OF_RANGE")]
    ancient = make_event("u1", at=NOW - timedelta(minutes=1))
    ancient.sent_at.CopyFrom(to_timestamp(NOW + timedelta(days=365 * 40)))
    assert list(stamp("acme", ancient, "event", NOW, LIMITS, backfill=True)) == []
    beyond_backfill = make_event("u1", at=NOW - timedelta(minutes=1))
    beyond_backfill.sent_at.CopyFrom(to_timestamp(NOW + timedelta(days=365 * 200)))
    assert [v.reason for v in stamp("acme", beyond_backfill, "event", NOW, LIMITS, backfill=True)] == [
        "OUT_OF_RANGE"
    ]


def test_enum_values_this_build_does_not_know_are_refused() -> None:
    """The wire carries any number in an enum field; one no sink can name is refused at the door, not
    parked as a dead letter after the caller heard OK."""
    event = make_event("u1")
    event.type = 99  # type: ignore[assignment]
    event.channel = 42  # type: ignore[assignment]
    refused = validate_event(event, "events[3]", LIMITS)
    assert [(v.field, v.reason) for v in refused] == [
        ("events[3].type", "UNKNOWN_ENUM_VALUE"),
        ("events[3].channel", "UNKNOWN_ENUM_VALUE"),
    ]


@pytest.mark.parametrize(
    ("field", "ts", "path"),
    [
        ("timestamp", Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1), "event.timestamp"),
        ("timestamp", Timestamp(seconds=1_796_000_000, nanos=-5), "event.timestamp.nanos"),
        ("sent_at", Timestamp(seconds=2**62), "event.sent_at"),
        ("sent_at", Timestamp(seconds=1_796_000_000, nanos=1_000_000_000), "event.sent_at.nanos"),
    ],
)
def test_times_outside_timestamps_range_are_refused_with_their_path(
    field: str, ts: Timestamp, path: str
) -> None:
    event = make_event("u1")
    getattr(event, field).CopyFrom(ts)
    assert [(v.field, v.reason) for v in validate_event(event, "event", LIMITS)] == [(path, "OUT_OF_RANGE")]


def test_identifiers_and_currencies_are_checked_whole() -> None:
    """A trailing newline is not a lower_snake_case type nor an ISO 4217 code (a `$` in the pattern matched
    before it), and a value holding NUL is one identity cannot store: each refused at the door."""
    event = make_event("u1")
    event.identifiers.add(type="user_id\n", value="a")
    event.identifiers.add(type="email", value="ann\x00@example.com")
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR\n", units=1))
    assert [(v.field, v.reason) for v in validate_event(event, "event", LIMITS)] == [
        ("event.identifiers[1].type", "INVALID_TYPE"),
        ("event.identifiers[2].value", "INVALID"),
        ("event.revenue.currency_code", "INVALID_CURRENCY"),
    ]


def test_only_identifier_types_of_a_valid_length_are_remembered() -> None:
    """The memo of checked types holds at most 10,001 names; one of nearly 32 KiB each would pin 300 MiB."""
    from wayline_ingest import validation

    event = make_event("u1")
    event.identifiers.add(type="x" * 65, value="a")
    assert fields(event) == ["event.identifiers[1].type"]
    assert "x" * 65 not in validation._KNOWN_TYPES
    event.identifiers[1].type = "x" * 64
    assert fields(event) == []
    assert validation._KNOWN_TYPES["x" * 64] is True
