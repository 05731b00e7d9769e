"""Event → ObservedEvent (event_converter.py): each field read as the store stores it."""

from __future__ import annotations

from decimal import Decimal

from google.protobuf import timestamp_pb2

from wayline.event.v1 import event_pb2
from wayline_decision.features.event_converter import observed_event


def _event() -> event_pb2.Event:
    event = event_pb2.Event(
        event_id="0F8FAD5B-D9CB-469F-A165-70867728950E",
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        channel=event_pb2.CHANNEL_CALL_CENTER,
        timestamp=timestamp_pb2.Timestamp(seconds=10, nanos=1_999),
        received_at=timestamp_pb2.Timestamp(seconds=11, nanos=999_999_999),
        person_id="p",
        text="hello",
        group_id="acme",
    )
    event.properties.update({"tier": "gold", "n": 2, "nested": {"a": [1, None, True]}})
    event.context.device.display_width = 390
    event.context.campaign.source = "newsletter"
    return event


def test_fields_are_read_as_the_store_keeps_them() -> None:
    found = observed_event(_event())
    assert found.event_id == "0f8fad5b-d9cb-469f-a165-70867728950e"  # the UUID's canonical text
    assert (found.timestamp_us, found.received_at_us) == (10_000_001, 11_999_999)  # truncated to µs
    assert (found.type, found.channel, found.person_id) == ("identify", "call_center", "p")
    assert found.properties == {"tier": "gold", "n": 2.0, "nested": {"a": [1.0, None, True]}}
    assert found.context["device"] == {"displayWidth": 390}  # proto3 JSON names
    assert found.context["campaign"]["source"] == "newsletter"
    assert (found.text, found.group_id, found.sentiment_score, found.revenue) == ("hello", "acme", None, None)


def test_optional_fields_are_absent_until_set() -> None:
    event = _event()
    event.ClearField("context")
    event.ClearField("properties")
    event.sentiment_score = -0.25
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR"))  # set, zero
    found = observed_event(event)
    assert (found.properties, dict(found.context)) == ({}, {})
    assert (found.sentiment_score, found.revenue) == (-0.25, 0.0)


def test_revenue_is_the_store_s_double() -> None:
    """ClickHouse's toFloat64 of the stored Decimal(38, 9) divides the scaled integer as a double, which is
    not always the decimal's nearest double: the state reads what the store reads."""
    event = _event()
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=738940620790707163, nanos=267962176))
    found = observed_event(event).revenue
    assert found == 7.389406207907071e17
    assert found != float(Decimal("738940620790707163.267962176"))  # the nearest double
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=-1, nanos=-750_000_000))
    assert observed_event(event).revenue == -1.75


def test_an_id_that_is_no_uuid_is_kept() -> None:
    event = _event()
    event.event_id = "not-a-uuid"
    assert observed_event(event).event_id == "not-a-uuid"


def test_every_spelling_of_a_uuid_reads_as_its_canonical_text() -> None:
    """The canonical text (what ingest assigns) is taken as it is; any other spelling of a UUID is
    canonicalised, as the store's UUID column reads it."""
    canonical = "0f8fad5b-d9cb-469f-a165-70867728950e"
    event = _event()
    for spelling in (canonical, canonical.upper(), canonical.replace("-", ""), f"{{{canonical}}}"):
        event.event_id = spelling
        assert observed_event(event).event_id == canonical, spelling


def test_properties_are_converted_as_they_are_read_and_reading_a_missing_key_changes_nothing() -> None:
    event = _event()
    found = observed_event(event).properties
    assert found["tier"] == "gold"
    assert "missing" not in found
    assert found.get("missing") is None
    assert "missing" not in event.properties.fields  # a message-valued map adds what is read: not here
    assert found == {"tier": "gold", "n": 2.0, "nested": {"a": [1.0, None, True]}}
    assert sorted(found) == ["n", "nested", "tier"]
    assert found["nested"] == {"a": [1.0, None, True]}
