"""proto_json against json_format itself: the same text written, the same messages read, on generated
Structs and contexts (every JSON kind, escapes, unknown enum numbers, NaN and infinite doubles), and the
same outcome for JSON the fast path leaves to json_format."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from wayline.api.v1 import errors_pb2
from wayline.event.v1 import event_pb2
from wayline_journeys.proto_json import JsonMemo, merge_json, to_json

_STRINGS = ["", "plain", "é ✓ 中", "😀", 'quote " and \\ and \n tab\t', "\u2028\x00\x1f", "</script>"]
_NUMBERS = [0.0, -0.0, 1.0, 2.5, -3.0, 1e300, 5e-324, 1 / 3, 10.0**17, 123456789012345678.0, -1e-7]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice(_STRINGS)
    if kind == 1:
        return rng.choice(_NUMBERS)
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return None
    if kind == 4:
        return {rng.choice(["a", "b", "ü", "", "k😀"]) + str(i): _value(rng, depth + 1) for i in range(3)}
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {}


def _struct(rng: random.Random) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({f"key{i}{rng.choice(_STRINGS)}": _value(rng) for i in range(rng.randrange(6))})
    return struct


def _context(rng: random.Random) -> event_pb2.EventContext:
    context = event_pb2.EventContext()
    if rng.random() < 0.6:
        device = context.device
        device.id, device.model = rng.choice(_STRINGS), "Pixel"
        device.type = rng.choice([0, 1, 5, 77])  # type: ignore[assignment]  # 77: no DeviceType
        device.display_density = rng.choice([0.0, 2.75, float("inf"), float("-inf"), float("nan")])
        device.display_width = rng.choice([0, -5, 2**31 - 1])
        if rng.random() < 0.5:
            device.ad_tracking_enabled = rng.random() < 0.5  # optional: false is still written
    if rng.random() < 0.5:
        context.page.path, context.page.title = "/p", rng.choice(_STRINGS)
    if rng.random() < 0.3:
        context.location.latitude = 0.0
    if rng.random() < 0.3:
        context.location.SetInParent()  # present and empty: written as {}
    if rng.random() < 0.5:
        context.user_agent, context.locale = rng.choice(_STRINGS), "de-DE"
    if rng.random() < 0.5:
        context.extra.update({"x": _value(rng)})
    elif rng.random() < 0.3:
        context.extra.SetInParent()
    return context


def test_to_json_writes_what_message_to_json_writes() -> None:
    rng = random.Random(8)
    for _ in range(1500):
        struct, context = _struct(rng), _context(rng)
        assert to_json(struct) == json_format.MessageToJson(struct, indent=None)
        assert to_json(context) == json_format.MessageToJson(context, indent=None)


def test_json_memo_writes_what_to_json_writes_and_stays_bounded() -> None:
    rng = random.Random(10)
    memo = JsonMemo(size=8)
    messages = [_struct(rng) for _ in range(20)] + [_context(rng) for _ in range(20)]
    for message in messages * 3:  # hits, misses and evictions
        assert memo(message) == json_format.MessageToJson(message, indent=None)
    assert len(memo._texts) <= 8
    struct = struct_pb2.Struct()
    struct.update({"x": float("nan")})
    with pytest.raises(ValueError, match="Fail to serialize"):
        memo(struct)


def test_to_json_leaves_other_messages_to_json_format() -> None:
    violation = errors_pb2.FieldViolation(field="name", description="é", reason="REQUIRED")
    assert to_json(violation) == json_format.MessageToJson(violation, indent=None)
    event = event_pb2.Event(
        event_id="e",
        timestamp=timestamp_pb2.Timestamp(seconds=5),
        identifiers=[event_pb2.Identifier(type="t", value="v")],
    )
    assert to_json(event) == json_format.MessageToJson(event, indent=None)  # Timestamp, int64 and repeated


def test_to_json_refuses_a_struct_number_that_json_cannot_hold() -> None:
    for number in (float("nan"), float("inf")):
        struct = struct_pb2.Struct()
        struct.update({"x": number})
        with pytest.raises(ValueError, match="Fail to serialize"):
            json_format.MessageToJson(struct, indent=None)
        with pytest.raises(ValueError, match="Fail to serialize"):
            to_json(struct)


def _parsed(text: str, field: str) -> event_pb2.Event:
    event = event_pb2.Event()
    json_format.Parse(text, getattr(event, field), ignore_unknown_fields=field == "context")
    return event


def test_merge_json_reads_what_parse_reads() -> None:
    rng = random.Random(9)
    for _ in range(1500):
        for field, message in (("properties", _struct(rng)), ("context", _context(rng))):
            text = to_json(message)
            event = event_pb2.Event()
            merge_json(text, event, field, ignore_unknown_fields=field == "context")
            expected = _parsed(text, field)
            assert event == expected
            assert event.SerializeToString(deterministic=True) == expected.SerializeToString(
                deterministic=True
            )


@pytest.mark.parametrize(
    "text",
    [
        '{"userAgent": "x", "unknown": 1}',
        '{"user_agent": "proto name"}',
        '{"userAgent": "both", "user_agent": "names"}',
        '{"device": {"type": "DEVICE_TYPE_NOT_A_TYPE"}}',
        '{"device": {"type": 3}}',
        '{"device": null}',
        '{"device": {"displayWidth": 1.0}}',
        '{"device": {"displayDensity": "NaN"}}',
        '{"device": {"adTrackingEnabled": "true"}}',
        '{"device": {"adTrackingEnabled": true, "ad_tracking_enabled": false}}',
        '{"location": {"latitude": "-Infinity"}}',
        '{"extra": {"a": [1, {"b": null}], "c": {}}}',
        ' {"locale": "de"} ',
        '{"locale": "de"',
        "[]",
    ],
)
def test_merge_json_leaves_the_rest_to_json_format(text: str) -> None:
    outcomes: list[object] = []
    for merge in (
        lambda e: merge_json(text, e, "context", ignore_unknown_fields=True),
        lambda e: json_format.Parse(text, e.context, ignore_unknown_fields=True),
    ):
        event = event_pb2.Event()
        try:
            merge(event)
            outcomes.append(event)
        except json_format.ParseError:
            outcomes.append("ParseError")
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("text", ["{}", '{"a": {}, "b": [], "c": null}', '{"a": 1e400}', '["list"]', "{"])
def test_merge_json_reads_properties_as_parse_does(text: str) -> None:
    outcomes: list[object] = []
    for merge in (
        lambda e: merge_json(text, e, "properties"),
        lambda e: json_format.Parse(text, e.properties),
    ):
        event = event_pb2.Event()
        try:
            merge(event)
            outcomes.append(event.SerializeToString(deterministic=True))
        except json_format.ParseError:
            outcomes.append("ParseError")
    assert outcomes[0] == outcomes[1]
