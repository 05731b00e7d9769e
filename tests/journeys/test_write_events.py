"""WriteEvents' conversion and columnar insert: what GetTimeline returns is exactly what was written, and
the stored JSON is json_format's text byte for byte (raw-JSON breakdowns group by it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from tests.journeys.conftest import T0, Journeys, field_violations, new_person
from wayline.api.v1 import errors_pb2
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, to_timestamp
from wayline.event.v1 import event_pb2
from wayline_journeys.converters import event_to_record, events_to_columns
from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import MAX_WRITE_EVENTS, EventRecord
from wayline_journeys.store import JourneyStore


def _time(minute: int, micros: int = 0) -> timestamp_pb2.Timestamp:
    return to_timestamp(T0 + timedelta(minutes=minute, microseconds=micros))


def rich_event(person_id: str) -> event_pb2.Event:
    """Every field of an event set, with the awkward values: nested and empty properties, optional fields
    set to their zero value, a negative-free revenue with nanos, an unknown enum number in the context."""
    properties = struct_pb2.Struct()
    properties.update(
        {
            "sku": "SKU-1",
            "price": 35.06,
            "quantity": 2,
            "gift": False,
            "coupon": None,
            "tags": ["a", 1.5, True, None, {"deep": ["é", "😀", 'quote " \\ \n']}],
            "address": {"city": "Zürich", "lines": [], "extra": {}},
            "huge": 1e300,
            "tiny": -5e-324,
        }
    )
    context = event_pb2.EventContext(
        device=event_pb2.Device(
            id="d-1",
            manufacturer="Acme",
            model="A1",
            name="phone",
            type=event_pb2.DEVICE_TYPE_MOBILE,
            advertising_id="ad-1",
            ad_tracking_enabled=False,
            display_width=1080,
            display_height=2400,
            display_density=2.75,
        ),
        os=event_pb2.OperatingSystem(name="Android", version="15"),
        app=event_pb2.App(name="Shop", version="3.2.0", build="320", namespace="dev.wayline.shop"),
        browser=event_pb2.Browser(name="Chrome", version="131"),
        user_agent="Mozilla/5.0 (Linux; Android 15)",
        locale="de-CH",
        timezone="Europe/Zurich",
        ip="203.0.113.7",
        campaign=event_pb2.Campaign(
            name="spring", source="news", medium="email", term="t", content="c", id="7"
        ),
        page=event_pb2.Page(
            path="/p",
            referrer="https://example.com/",
            search="?q=1",
            title="P",
            url="https://x/p",
            category="Docs",
        ),
        screen=event_pb2.Screen(name="Home", category="main"),
        location=event_pb2.Location(
            country="CH",
            region="ZH",
            city="Zürich",
            postal_code="8001",
            latitude=0.0,
            longitude=8.54,
            store_id="s",
        ),
        library=event_pb2.Library(name="wayline-android", version="1.0.0"),
        session_id="s-1",
    )
    context.extra.update({"experiment": "b", "weights": [0.1, 0.9], "flags": {"new": True}})
    context.traits.update(
        {"email": "ü@example.com", "plan": "pro", "logins": 12, "address": {"city": "Bern"}}
    )
    integrations = struct_pb2.Struct()
    integrations.update({"All": True, "Mixpanel": False, "Amplitude": {"session_id": 1234567890123}})
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Order Completed",
        channel=event_pb2.CHANNEL_MOBILE_APP,
        timestamp=_time(0, 123_456),
        sent_at=_time(0, 200_001),
        received_at=_time(1, 999_999),
        identifiers=[
            event_pb2.Identifier(type="device_id", value="d-1"),
            event_pb2.Identifier(type="email", value="Ünïcode@example.com"),
            event_pb2.Identifier(type="user_id", value="u-1"),
        ],
        properties=properties,
        context=context,
        text="Thanks — très bien 👍",
        person_id=person_id,
        revenue=event_pb2.Money(currency_code="EUR", units=1234, nanos=567_000_001),
        group_id="g-1",
        plan_violations=[
            errors_pb2.FieldViolation(
                field="properties.sku", description="not in the plan", reason="UNPLANNED"
            ),
            errors_pb2.FieldViolation(field="name", description="é", reason="RENAMED"),
        ],
        sentiment_score=-0.25,
        original_timestamp=_time(-3, 7),
        integrations=integrations,
        previous_identifier=event_pb2.Identifier(type="anonymous_id", value="a-ü-1"),
    )


def plain_event(person_id: str) -> event_pb2.Event:
    """The other end: nothing optional but a refund and zero values where presence counts."""
    return event_pb2.Event(
        event_id=str(uuid.uuid4()).upper(),  # stored as a UUID, read back in its canonical form
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        name="",
        channel=event_pb2.CHANNEL_CALL_CENTER,
        timestamp=_time(5),
        received_at=_time(5),
        properties=struct_pb2.Struct(),  # present and empty (absent reads back as present and empty)
        person_id=person_id,
        revenue=event_pb2.Money(currency_code="USD", units=-3, nanos=-500_000_000),
        sentiment_score=0.0,
    )


def test_write_events_then_get_timeline_returns_exactly_the_events(journeys: Journeys) -> None:
    person = new_person()
    rich, plain = rich_event(person), plain_event(person)
    journeys.write(rich, plain)
    read = journeys.timeline(person)
    plain.event_id = plain.event_id.lower()
    assert read == [rich, plain]
    # The fields added to the contract after the store's first release, one by one (== says which differ).
    assert read[0].integrations == rich.integrations
    assert read[0].previous_identifier == rich.previous_identifier
    assert read[0].context.traits == rich.context.traits
    assert read[0].context.page.category == "Docs"
    assert not read[1].HasField("integrations")
    assert not read[1].HasField("previous_identifier")
    assert read[1].HasField("sentiment_score")  # 0.0, and present
    assert read[0].context.device.HasField("ad_tracking_enabled")


def test_write_events_refuses_more_than_the_contracts_limit_and_stores_none(journeys: Journeys) -> None:
    person = new_person()
    events = [plain_event(person) for _ in range(MAX_WRITE_EVENTS + 1)]
    with pytest.raises(grpc.RpcError) as raised:
        journeys.write(*events)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"events": "TOO_MANY"}
    journeys.write(*events[:MAX_WRITE_EVENTS])  # the limit itself is taken
    assert len(journeys.timeline(person, page_size=1000)) == MAX_WRITE_EVENTS


def refused_whole(journeys: Journeys, person: str, *events: event_pb2.Event) -> dict[str, str]:
    """WriteEvents refuses the call with INVALID_ARGUMENT and stores none of it: its violations."""
    with pytest.raises(grpc.RpcError) as raised:
        journeys.write(*events)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert journeys.timeline(person) == []
    return field_violations(raised.value)


def test_write_events_names_each_event_without_an_id_or_a_timestamp(journeys: Journeys) -> None:
    person = new_person()
    no_id, no_time = plain_event(person), plain_event(person)
    no_id.event_id = ""
    no_time.ClearField("timestamp")
    assert refused_whole(journeys, person, plain_event(person), no_id, no_time) == {
        "events[1].event_id": "REQUIRED",
        "events[2].timestamp": "REQUIRED",
    }


def test_write_events_names_each_event_id_the_store_cannot_parse_as_a_uuid(journeys: Journeys) -> None:
    """The store's INSERT failed on them, for the whole group commit: INTERNAL, other callers' rows lost."""
    person = new_person()
    nul, braced, undashed = plain_event(person), plain_event(person), plain_event(person)
    nul.event_id = "\x00"
    braced.event_id = "{3fa85f64-5717-4562-b3fc-2c963f66afa6}"
    undashed.event_id = uuid.uuid4().hex  # a form the store parses
    assert refused_whole(journeys, person, plain_event(person), nul, braced, undashed) == {
        "events[1].event_id": "INVALID_UUID",
        "events[2].event_id": "INVALID_UUID",
    }


def test_write_events_refuses_numbers_json_cannot_hold_with_their_paths(journeys: Journeys) -> None:
    """Not INTERNAL (ingest retried that as a failure of ours): INVALID_ARGUMENT naming each field."""
    person = new_person()
    nan, infinite = plain_event(person), plain_event(person)
    nan.properties.update({"price": float("nan")})
    infinite.context.traits.update({"ltv": [1, float("inf")]})
    assert refused_whole(journeys, person, plain_event(person), nan, infinite) == {
        "events[1].properties": "OUT_OF_RANGE",
        "events[2].context.traits": "OUT_OF_RANGE",
    }


def test_write_events_names_each_time_and_enum_the_store_cannot_hold(journeys: Journeys) -> None:
    """Was INTERNAL (ingest retried it as a failure of ours): a time past year 9999 in any of the event's
    Timestamps, nanos outside a second, an enum number the contract does not define. INVALID_ARGUMENT naming
    each field, and the valid event of the call is not stored either."""
    person = new_person()
    late, early, sent, original, nanos, unknown = (plain_event(person) for _ in range(6))
    late.timestamp.seconds = MAX_TIMESTAMP_SECONDS + 1
    early.received_at.seconds = MIN_TIMESTAMP_SECONDS - 1
    sent.sent_at.seconds = 2**62
    original.original_timestamp.seconds = MAX_TIMESTAMP_SECONDS + 1
    nanos.timestamp.nanos = -1
    unknown.channel = 99  # type: ignore[assignment]
    unknown.type = 42  # type: ignore[assignment]
    assert refused_whole(
        journeys, person, plain_event(person), late, early, sent, original, nanos, unknown
    ) == {
        "events[1].timestamp": "OUT_OF_RANGE",
        "events[2].received_at": "OUT_OF_RANGE",
        "events[3].sent_at": "OUT_OF_RANGE",
        "events[4].original_timestamp": "OUT_OF_RANGE",
        "events[5].timestamp.nanos": "OUT_OF_RANGE",
        "events[6].channel": "INVALID",
        "events[6].type": "INVALID",
    }


def test_write_events_keeps_times_to_the_microsecond(journeys: Journeys) -> None:
    event = plain_event(new_person())
    event.timestamp.nanos = 123_456_789
    journeys.write(event)
    (read,) = journeys.timeline(event.person_id)
    assert read.timestamp.nanos == 123_456_000  # DateTime64(6): truncated, as ToDatetime truncates


def test_write_events_tells_empty_integrations_from_none(journeys: Journeys) -> None:
    person = new_person()
    sent_empty, sent_none = plain_event(person), plain_event(person)
    sent_empty.integrations.SetInParent()  # `"integrations": {}`: sent, switching nothing
    sent_empty.previous_identifier.value = "only-a-value"  # ingest does not insist on a type
    events = sorted(journeys.write(sent_empty, sent_none), key=lambda e: e.event_id.lower())
    read = sorted(journeys.timeline(person), key=lambda e: e.event_id)
    assert [e.HasField("integrations") for e in read] == [e.HasField("integrations") for e in events]
    assert [e.previous_identifier for e in read] == [e.previous_identifier for e in events]


@pytest.fixture
def store(fresh_database: Callable[[], Client]) -> Iterator[JourneyStore]:
    store = JourneyStore(fresh_database)
    store.open()
    yield store
    store.close()


def test_write_events_stores_the_json_that_json_format_writes(store: JourneyStore) -> None:
    event = rich_event(new_person())
    assert store.write("acme", events_to_columns([event])) == 1
    ((properties, context, violations, revenue, integrations, previous),) = store.client.query(
        "SELECT properties, context, plan_violations, revenue, integrations, "
        "(previous_identifier_type, previous_identifier_value) FROM events"
    ).result_rows
    assert properties == json_format.MessageToJson(event.properties, indent=None)
    assert integrations == json_format.MessageToJson(event.integrations, indent=None)
    assert previous == ("anonymous_id", "a-ü-1")
    assert context == json_format.MessageToJson(event.context, indent=None)
    expected = [json_format.MessageToDict(v) for v in event.plan_violations]
    assert violations == json.dumps(expected, separators=(",", ":"))
    assert revenue == Decimal("1234.567000001")


def test_event_to_record_keeps_exact_values() -> None:
    event = rich_event("p")
    record = event_to_record(event)
    assert record.timestamp == T0 + timedelta(microseconds=123_456)
    assert record.timestamp.tzinfo is UTC
    assert record.revenue == Decimal("1234.567000001")
    assert record.identifier_types == ("device_id", "email", "user_id")
    assert (record.type, record.channel) == ("track", "mobile_app")
    assert json.loads(record.integrations_json) == {
        "All": True,
        "Mixpanel": False,
        "Amplitude": {"session_id": 1234567890123},
    }
    assert (record.previous_identifier_type, record.previous_identifier_value) == ("anonymous_id", "a-ü-1")
    assert json.loads(record.context_json)["traits"]["plan"] == "pro"
    assert json.loads(record.context_json)["page"]["category"] == "Docs"
    bare = event_to_record(plain_event("p"))
    assert (bare.integrations_json, bare.previous_identifier_type, bare.previous_identifier_value) == (
        "",
    ) * 3
    assert event_to_record(plain_event("p")).revenue == Decimal("-3.5")
    assert event_to_record(event_pb2.Event(event_id="e")).timestamp == datetime(1970, 1, 1, tzinfo=UTC)


def test_event_to_record_refuses_what_is_not_a_timestamp() -> None:
    for bad in (timestamp_pb2.Timestamp(seconds=10**12), timestamp_pb2.Timestamp(seconds=0, nanos=-1)):
        with pytest.raises(ValueError, match="Timestamp is not valid"):
            event_to_record(event_pb2.Event(event_id="e", timestamp=bad))
    with pytest.raises(ValueError, match="99"):
        event_to_record(event_pb2.Event(event_id="e", channel=99))  # type: ignore[arg-type]


def test_event_columns_mirror_event_records() -> None:
    assert [f.name for f in fields(EventColumns)] == [f.name for f in fields(EventRecord)]
    records = [event_to_record(rich_event("p")), event_to_record(plain_event("q"))]
    assert EventColumns.of(records).records() == records
    assert EventColumns.of([]).records() == []
