"""One table of cases for the text operators (CONTAINS, NOT_CONTAINS, MATCHES_REGEX) on every kind of JSON
value, which every evaluator of PropertyFilter is held to: journeys' SQL (tests/journeys), decision's matcher
(tests/decision/features) and the orchestrator's runtime (tests/orchestrator), each reading the event through
its own conversion of the same `event_pb2.Event` (analytics.proto's FilterOperator; ADR 77).

The rule: a string is its own text; a number is written as the journey store's ClickHouse prints it, the
shortest decimal that reads back as the same double in ECMAScript's layout (`2`, `2.5`, `1e21`,
`100000000000000000000`, `-0`, `0.000001`, `1e-7`); a boolean is `true` or `false`. The values looked for
are written the same way (a null value as `null`). A null or missing property, an object and a list have no
text: CONTAINS and MATCHES_REGEX never hold on them, NOT_CONTAINS always does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2

__all__ = ["ABSENT", "CASES", "PATH", "TextCase", "case_event", "filter_message"]

PATH = "properties.v"
ABSENT: Any = object()
"""A case's value when the event lacks the property."""


@dataclass(frozen=True)
class TextCase:
    value: Any  # the property's value, as a sender puts it in the event's properties (ABSENT: none)
    operator: str  # CONTAINS, NOT_CONTAINS or MATCHES_REGEX
    values: tuple[Any, ...]  # the filter's values
    holds: bool

    def __str__(self) -> str:
        shown = "absent" if self.value is ABSENT else repr(self.value)
        return f"{shown} {self.operator} {self.values!r}"


CASES = (
    # Numbers, as ClickHouse prints them (JSONExtractRaw of the stored JSON).
    TextCase(2.0, "CONTAINS", ("2",), True),
    TextCase(2.0, "CONTAINS", (".0",), False),  # an integral number has no fraction
    TextCase(2.5, "MATCHES_REGEX", (r"^2\.5$",), True),
    TextCase(125.0, "CONTAINS", (12.0,), True),  # a number value is looked for as its text: 12
    TextCase(1e20, "MATCHES_REGEX", ("^100000000000000000000$",), True),
    TextCase(1e21, "MATCHES_REGEX", ("^1e21$",), True),  # from 1e21 on: an exponent, without `+`
    TextCase(1e21, "CONTAINS", (1e21,), True),  # a number contains itself
    TextCase(123456789012345678901234567890.0, "MATCHES_REGEX", (r"^1\.2345678901234568e29$",), True),
    TextCase(-0.0, "MATCHES_REGEX", ("^-0$",), True),
    TextCase(0.0, "CONTAINS", (-0.0,), False),  # the value -0 is looked for as `-0`
    TextCase(0.1, "MATCHES_REGEX", (r"^0\.1$",), True),
    TextCase(1e-6, "MATCHES_REGEX", (r"^0\.000001$",), True),
    TextCase(1e-7, "MATCHES_REGEX", ("^1e-7$",), True),  # below 1e-6: an exponent, without a leading 0
    TextCase(1e-7, "CONTAINS", (1e-7,), True),
    TextCase(1.5e-5, "NOT_CONTAINS", ("e",), True),  # 0.000015
    # Booleans.
    TextCase(True, "MATCHES_REGEX", ("^true$",), True),
    TextCase(False, "CONTAINS", (False,), True),
    TextCase(True, "CONTAINS", ("1",), False),
    # Null and missing: not set, no text.
    TextCase(None, "CONTAINS", ("null",), False),
    TextCase(None, "NOT_CONTAINS", ("null",), True),
    TextCase(None, "MATCHES_REGEX", ("",), False),
    TextCase(ABSENT, "NOT_CONTAINS", ("x",), True),
    TextCase(ABSENT, "MATCHES_REGEX", ("",), False),
    # Objects and lists: no text (their keys' order is not part of the value).
    TextCase({"sku": "a-1", "n": 2.0}, "CONTAINS", ("sku",), False),
    TextCase({"sku": "a-1"}, "NOT_CONTAINS", ("a-1",), True),
    TextCase({}, "MATCHES_REGEX", ("",), False),
    TextCase(["vip", "new"], "CONTAINS", ("vip",), False),
    TextCase([], "NOT_CONTAINS", ("[",), True),
    # Strings: themselves.
    TextCase("12", "CONTAINS", (12.0,), True),
    TextCase("1e21", "CONTAINS", (1e21,), True),
    TextCase("nullable", "CONTAINS", (None,), True),  # the value null is looked for as `null`
    TextCase("été", "MATCHES_REGEX", ("^été$",), True),
    TextCase("", "CONTAINS", ("",), True),
)


def case_event(value: Any, person_id: str = "p") -> event_pb2.Event:
    """An identify event of `person_id` with `value` at PATH (so also its trait `person.v`; none when
    ABSENT), as ingest delivers it to every service."""
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=timestamp_pb2.Timestamp(seconds=1_790_000_000),
        received_at=timestamp_pb2.Timestamp(seconds=1_790_000_000),
        identifiers=[event_pb2.Identifier(type="user_id", value=person_id)],
        person_id=person_id,
    )
    if value is not ABSENT:
        event.properties.update({"v": value})
    return event


def filter_message(operator: str, values: tuple[Any, ...], path: str = PATH) -> analytics_pb2.PropertyFilter:
    """The filter `<path> <operator> <values>` as a request carries it (`operator` without its prefix)."""
    messages = [struct_pb2.Value() for _ in values]
    for message, value in zip(messages, values, strict=True):
        if value is None:
            message.null_value = struct_pb2.NULL_VALUE
        elif isinstance(value, bool):
            message.bool_value = value
        elif isinstance(value, float):
            message.number_value = value
        else:
            message.string_value = value
    return analytics_pb2.PropertyFilter(
        property=path,
        operator=analytics_pb2.FilterOperator.Value(f"FILTER_OPERATOR_{operator}"),
        values=messages,
    )
