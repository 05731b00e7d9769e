"""Segment messages → Wayline events, as pure functions (no server): ids, times, paths, context, channel."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from wayline.common.errors import FieldViolation
from wayline.event.v1 import event_pb2
from wayline_gateway.http.segment import MESSAGE_ID_NAMESPACE, InvalidMessage, Mapped, event_id_of, to_event


def violations(message: Any, kind: str | None = "track", path: str = "") -> list[tuple[str, str]]:
    with pytest.raises(InvalidMessage) as caught:
        to_event(message, kind, path)
    return [(v.field, v.reason) for v in caught.value.violations]


@given(st.text(min_size=1, max_size=200))
def test_event_id_of_any_message_id_is_a_stable_uuid(message_id: str) -> None:
    first = event_id_of(message_id)
    assert first == event_id_of(message_id)
    assert str(uuid.UUID(first)) == first


@given(st.text(min_size=1, max_size=100), st.text(min_size=1, max_size=100))
def test_event_id_of_distinct_message_ids_differ(a: str, b: str) -> None:
    if a != b and not _is_uuid(a) and not _is_uuid(b):
        assert event_id_of(a) != event_id_of(b)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def test_event_id_of_keeps_a_uuid_and_hashes_anything_else_in_the_fixed_namespace() -> None:
    assert event_id_of("6E5F6B0C-1A2B-4C3D-8E9F-0A1B2C3D4E5F") == "6e5f6b0c-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    assert event_id_of("ajs-next-1") == str(uuid.uuid5(MESSAGE_ID_NAMESPACE, "ajs-next-1"))
    assert uuid.uuid5(uuid.NAMESPACE_URL, "https://wayline.dev/ns/segment-message-id") == MESSAGE_ID_NAMESPACE


def test_every_problem_of_a_message_is_reported_with_its_path_in_segment_names() -> None:
    message = {
        "event": 5,
        "context": [],
        "timestamp": "yesterday",
        "properties": {"a": 1},
        "anonymousId": True,
    }
    assert violations(message, None, "batch[2]") == [("batch[2].type", "REQUIRED")]
    assert violations(message | {"type": "track"}, None, "batch[2]") == [
        ("batch[2].anonymousId", "INVALID_TYPE"),
        ("batch[2].userId", "REQUIRED"),
        ("batch[2].event", "INVALID_TYPE"),
        ("batch[2].timestamp", "INVALID_TIME"),
        ("batch[2].context", "INVALID_TYPE"),
    ]
    assert violations([1, 2]) == [("body", "INVALID_TYPE")]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_whose_offset_carries_it_past_the_years_a_timestamp_holds_is_reported(when: str) -> None:
    """Valid ISO-8601, but 31 December of year 0 or 1 January of year 10000 in UTC: reported with its path
    (it overflowed in the conversion to the event, a 500)."""
    message = {"type": "track", "event": "E", "userId": "u", "timestamp": when, "sentAt": when}
    assert violations(message, None, "batch[0]") == [
        ("batch[0].timestamp", "INVALID_TIME"),
        ("batch[0].sentAt", "INVALID_TIME"),
    ]


@pytest.mark.parametrize(
    ("kind", "message", "expected"),
    [
        ("group", {"userId": "u"}, [("groupId", "REQUIRED")]),
        ("alias", {"userId": "u"}, [("previousId", "REQUIRED")]),
        ("track", {"userId": "", "anonymousId": "", "event": "E"}, [("userId", "REQUIRED")]),
        (
            "identify",
            {"userId": "u", "context": {"app": {"name": 3}}},
            [("context.app.name", "INVALID_TYPE")],
        ),
    ],
)
def test_segment_required_fields_are_checked(kind: str, message: dict[str, Any], expected: list[Any]) -> None:
    assert violations(message, kind) == expected


@pytest.mark.parametrize("width", [2**31, -1, float("inf"), 10**400])
def test_a_screen_size_the_display_field_cannot_hold_is_reported(width: float) -> None:
    """`context.screen.width` fills an int32: 2**31, a negative width, `1e999` (infinity once parsed) or 400
    digits (an int Python's JSON reads whole, past a float) raised in the conversion (a 500 for the whole
    batch); now the message is refused with its path."""
    message = {"userId": "u", "event": "E", "context": {"screen": {"width": width, "height": 844}}}
    assert violations(message, "track", "batch[0]") == [("batch[0].context.screen.width", "OUT_OF_RANGE")]


def test_an_integer_no_json_number_holds_is_reported_where_it_is() -> None:
    """Python's JSON reads a 400-digit number as an int, which a Struct (doubles) refused with OverflowError:
    a 500 for the whole batch. Now the message is refused with the object holding it."""
    huge = 10**400
    message = {
        "userId": "u",
        "event": "E",
        "properties": {"total": [huge]},
        "context": {"traits": {"score": huge}},
        "integrations": {"All": huge},
    }
    assert violations(message, "track", "batch[1]") == [
        ("batch[1].context.traits", "OUT_OF_RANGE"),
        ("batch[1].properties", "OUT_OF_RANGE"),
        ("batch[1].integrations", "OUT_OF_RANGE"),
    ]


def test_a_fractional_screen_size_keeps_its_whole_pixels() -> None:
    context = {"screen": {"width": 392.727, "height": 850.9}}  # React Native's density-independent sizes
    device = to_event({"userId": "u", "event": "E", "context": context}, "track", "").event.context.device
    assert (device.display_width, device.display_height) == (392, 850)


_ODD = st.sampled_from(
    [
        "",
        "\x00",
        "\u00b2",
        "1e999",
        "NaN",
        "2026-13-40T99:99:99Z",
        "9999-12-31T23:59:59-14:00",
        "USD",
        "x" * 300,
    ]
)
_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.just(10**400),
        st.floats(),
        _ODD,
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_PARTS = [
    "ip",
    "locale",
    "timezone",
    "device",
    "screen",
    "page",
    "campaign",
    "location",
    "os",
    "app",
    "traits",
]
_PART_KEYS = [
    "id",
    "type",
    "name",
    "width",
    "height",
    "density",
    "country",
    "latitude",
    "longitude",
    "version",
]
_CONTEXTS = st.dictionaries(
    st.sampled_from(_PARTS),
    st.one_of(
        st.dictionaries(
            st.sampled_from(_PART_KEYS), st.one_of(st.integers(-(2**40), 2**40), st.floats(), _JSON)
        ),
        _JSON,
    ),
)
_MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["track", "page", "screen", "identify", "group", "alias"]), _JSON),
        **{key: st.one_of(_ODD, _JSON) for key in ("userId", "anonymousId", "event", "timestamp", "sentAt")},
        **{key: st.one_of(_ODD, _JSON) for key in ("messageId", "groupId", "previousId", "channel", "name")},
        "properties": st.one_of(
            st.dictionaries(st.sampled_from(["revenue", "currency", "url", "title", "path"]), _JSON), _JSON
        ),
        "traits": _JSON,
        "context": st.one_of(_CONTEXTS, _JSON),
    },
)


@settings(max_examples=examples(300), deadline=None)
@given(message=_MESSAGES, kind=st.sampled_from([None, "track", "page", "identify", "group", "alias"]))
def test_any_json_message_becomes_an_event_or_reported_problems(
    message: dict[str, Any], kind: str | None
) -> None:
    """Whatever a sender's JSON holds, the mapping answers with an event or the problems it found: never
    another exception, which the collector would answer with a 500 for the whole batch."""
    problems: list[FieldViolation] = []
    try:
        mapped: Mapped | None = to_event(message, kind, "batch[0]")
    except InvalidMessage as refused:
        mapped, problems = None, refused.violations
    if mapped is None:
        assert problems
        assert all(v.field.startswith("batch[0]") for v in problems)
    else:
        assert mapped.event.SerializeToString()


def test_device_time_and_sent_at_follow_segment_and_rudderstack() -> None:
    segment = to_event({"userId": "u", "event": "E", "timestamp": "2024-05-01T12:00:00Z",
                        "sentAt": "2024-05-01T12:00:05Z"}, "track", "").event  # fmt: skip
    assert (segment.timestamp.ToJsonString(), segment.sent_at.ToJsonString()) == (
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:05Z",
    )
    rudder = to_event({"userId": "u", "event": "E", "originalTimestamp": "2024-05-01T12:00:00+02:00",
                       "sentAt": "2024-05-01T10:00:05Z"}, "track", "").event  # fmt: skip
    assert rudder.timestamp.ToJsonString() == "2024-05-01T10:00:00Z"
    assert rudder.HasField("sent_at")
    processed = to_event({"userId": "u", "event": "E", "originalTimestamp": "2024-05-01T11:59:00Z",
                          "timestamp": "2024-05-01T12:00:00Z", "sentAt": "2024-05-01T12:00:05Z"},
                         "track", "").event  # fmt: skip
    assert processed.timestamp.ToJsonString() == "2024-05-01T12:00:00Z"
    assert not processed.HasField("sent_at")  # already corrected: no second correction


def test_context_keys_land_in_typed_fields_and_the_rest_in_extra() -> None:
    context = {
        "app": {"name": "Shop", "version": "3.1", "build": "31", "namespace": "com.shop"},
        "device": {
            "id": "d-1",
            "advertisingId": "ad-1",
            "adTrackingEnabled": True,
            "type": "ios",
            "token": "t",
        },
        "os": {"name": "iOS", "version": "17.4"},
        "screen": {"width": 390, "height": 844, "density": 3},
        "location": {"city": "Lyon", "country": "France", "latitude": 45.76},
        "library": {"name": "analytics-ios", "version": "4.1"},
        "network": {"wifi": True},
        "active": True,
        "groupId": "acct-9",
        "traits": {"email": "a@example.com"},
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "userAgent": "Shop/3.1",
    }
    event = to_event({"anonymousId": "a", "event": "E", "context": context}, "track", "").event
    assert event.channel == event_pb2.CHANNEL_MOBILE_APP
    assert event.group_id == "acct-9"
    ctx = event.context
    assert (ctx.app.namespace, ctx.os.version, ctx.library.name) == ("com.shop", "17.4", "analytics-ios")
    assert (ctx.device.id, ctx.device.advertising_id, ctx.device.ad_tracking_enabled) == ("d-1", "ad-1", True)
    assert (ctx.device.display_width, ctx.device.display_height, ctx.device.display_density) == (
        390,
        844,
        3.0,
    )
    assert (ctx.location.city, ctx.location.latitude, ctx.location.country) == ("Lyon", 45.76, "")
    assert (ctx.locale, ctx.timezone, ctx.user_agent) == ("fr-FR", "Europe/Paris", "Shop/3.1")
    assert dict(ctx.traits) == {"email": "a@example.com"}
    extra = ctx.extra
    assert json_format.MessageToDict(extra)["network"] == {"wifi": True}
    assert extra["active"] is True
    assert json_format.MessageToDict(extra)["device"] == {"type": "ios", "token": "t"}
    assert json_format.MessageToDict(extra)["location"] == {"country": "France"}


@pytest.mark.parametrize(
    ("message", "channel"),
    [
        ({"channel": "web"}, event_pb2.CHANNEL_WEB),
        ({"channel": "server"}, event_pb2.CHANNEL_OTHER),
        ({"context": {"channel": "in_store"}}, event_pb2.CHANNEL_IN_STORE),
        ({"context": {"userAgent": "Mozilla/5.0"}}, event_pb2.CHANNEL_WEB),
        ({"context": {"os": {"name": "Android"}}}, event_pb2.CHANNEL_MOBILE_APP),
        ({}, event_pb2.CHANNEL_OTHER),
    ],
)
def test_the_channel_is_named_or_inferred(message: dict[str, Any], channel: int) -> None:
    assert to_event({"userId": "u", "event": "E"} | message, "track", "").event.channel == channel


def test_revenue_and_currency_become_the_events_money() -> None:
    event = to_event({"userId": "u", "event": "Order Completed",
                      "properties": {"revenue": "-1.75", "currency": "eur"}}, "track", "").event  # fmt: skip
    assert (event.revenue.currency_code, event.revenue.units, event.revenue.nanos) == (
        "EUR",
        -1,
        -750_000_000,
    )
    plain = to_event({"userId": "u", "event": "E", "properties": {"revenue": "n/a"}}, "track", "").event
    assert not plain.HasField("revenue")


def test_alias_types_the_previous_id_and_records_it() -> None:
    anonymous = to_event({"userId": "new", "anonymousId": "anon", "previousId": "anon"}, "alias", "").event
    assert [(i.type, i.value) for i in anonymous.identifiers] == [
        ("user_id", "new"),
        ("anonymous_id", "anon"),
    ]
    assert (anonymous.previous_identifier.type, anonymous.previous_identifier.value) == (
        "anonymous_id",
        "anon",
    )
    renamed = to_event({"userId": "new", "previousId": "old"}, "alias", "").event
    assert [(i.type, i.value) for i in renamed.identifiers] == [("user_id", "new"), ("user_id", "old")]


def test_ingest_paths_are_translated_back_to_the_senders_names() -> None:
    mapped = to_event(
        {"anonymousId": "a", "userId": "u", "event": "E", "timestamp": "2024-01-01T00:00:00Z",
         "properties": {"revenue": 3, "currency": "XX"}},
        "track",
        "batch[4]",
    )  # fmt: skip
    assert mapped.segment_path("identifiers[1].value") == "batch[4].anonymousId"
    assert mapped.segment_path("timestamp") == "batch[4].timestamp"
    assert mapped.segment_path("revenue.currency_code") == "batch[4].properties.currency"
    assert mapped.segment_path("properties.price") == "batch[4].properties.price"
    assert mapped.segment_path("") == "batch[4]"
    assert to_event({"userId": "u", "traits": {}}, "identify", "").segment_path("properties.x") == "traits.x"


def test_page_properties_fill_the_page_context_and_category() -> None:
    properties = {"url": "https://x.example/", "title": "Home | X"}
    message = {"anonymousId": "a", "name": "Home", "category": "Shop", "properties": properties}
    event = to_event(message, "page", "").event
    page = event.context.page
    assert (page.url, page.title, page.category, event.name) == (
        "https://x.example/",
        "Home | X",
        "Shop",
        "Home",
    )
