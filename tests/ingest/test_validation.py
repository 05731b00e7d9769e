"""Validation and enrichment at the door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.events import make_event
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline_ingest.validation import EventLimits, enrich, validate_event

LIMITS = EventLimits(max_properties_bytes=1024, max_text_bytes=64, max_future_skew=timedelta(hours=1))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def fields(event: event_pb2.Event) -> list[str]:
    return [v.field for v in validate_event(event, "event", LIMITS)]


def test_a_well_formed_event_passes() -> None:
    assert fields(make_event("u1")) == []


def test_each_problem_is_named_by_its_path() -> None:
    event = make_event("u1")
    event.type = event_pb2.EVENT_TYPE_UNSPECIFIED
    event.identifiers.add(type="Bad Type", value="x")
    event.text = "x" * 65
    event.properties.update({"blob": "y" * 2000})
    assert fields(event) == ["event.type", "event.identifiers[1].type", "event.properties", "event.text"]


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


def test_enrich_fills_event_id_received_at_and_a_missing_timestamp() -> None:
    event = make_event("u1")
    event.event_id = ""
    event.ClearField("timestamp")
    assert enrich(event, "event", NOW, LIMITS) == []
    assert len(event.event_id) == 36
    assert to_datetime(event.received_at) == NOW
    assert to_datetime(event.timestamp) == NOW


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
