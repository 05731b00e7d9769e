"""`wayline.event.v1.Event` (as identity resolved it: `person_id` set, `received_at` set by ingest) → the
ObservedEvent the online state consumes, reading each field as the store stores it: times in whole
microseconds (finer parts truncated), enum names short and lower-case, the event id as canonical UUID text
(the store keeps a UUID and orders ties by its text), revenue as the store's double, properties as plain
JSON-like values. The context is converted only when a filter or a property reads it (lazily, on first
access): json_format's walk costs tens of microseconds, and most specs never look at the context. The
properties are converted key by key as they are read.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from wayline.event.v1 import event_pb2
from wayline_decision.features.model import ObservedEvent

__all__ = ["observed_event", "struct_value"]

_TYPES = {v: _n.removeprefix("EVENT_TYPE_").lower() for _n, v in event_pb2.EventType.items()}
_CHANNELS = {v: _n.removeprefix("CHANNEL_").lower() for _n, v in event_pb2.Channel.items()}
_NANOS = 1_000_000_000
# Lower-case 8-4-4-4-12 hex: str(uuid.UUID(text)) gives it back unchanged, at a tenth of the cost.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _micros(timestamp: timestamp_pb2.Timestamp) -> int:
    return timestamp.seconds * 1_000_000 + timestamp.nanos // 1000


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_value(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    return None


def struct_value(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict of JSON-like values (numbers are floats, as a Struct holds them)."""
    return {key: _value(value) for key, value in struct.fields.items()}


class _LazyProperties(Mapping[str, Any]):
    """The properties as `struct_value` gives them, each value converted when first read: a spec reads a
    few keys of an event's properties, or none (iterating over them converts them all). Walking a Struct's
    map costs about a quarter of ObserveEvents' Python for three keys."""

    __slots__ = ("_fields", "_read", "_whole")

    def __init__(self, struct: struct_pb2.Struct) -> None:
        self._fields = struct.fields
        self._read: dict[str, Any] = {}
        self._whole = False

    def __getitem__(self, key: str) -> Any:
        read = self._read
        if key in read or self._whole:
            return read[key]
        fields = self._fields
        # `in` first: reading a missing key of a message-valued map field would add it to the event.
        if not isinstance(key, str) or key not in fields:
            raise KeyError(key)
        value = read[key] = _value(fields[key])
        return value

    def _dict(self) -> dict[str, Any]:
        if not self._whole:
            self._read = {
                key: self._read[key] if key in self._read else _value(v) for key, v in self._fields.items()
            }
            self._whole = True
        return self._read

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())


class _LazyContext(Mapping[str, Any]):
    """The context as its proto3 JSON object, built on first access."""

    __slots__ = ("_context", "_found")

    def __init__(self, context: event_pb2.EventContext) -> None:
        self._context = context
        self._found: dict[str, Any] | None = None

    def _dict(self) -> dict[str, Any]:
        if self._found is None:
            self._found = json_format.MessageToDict(self._context)
        return self._found

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())


def _event_id(text: str) -> str:
    if _CANONICAL_UUID.fullmatch(text):  # what ingest assigns: already the text uuid.UUID would give
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text  # anything else is kept as sent


def _revenue(money: event_pb2.Money) -> float:
    # ClickHouse's toFloat64 of the stored Decimal(38, 9): the scaled integer as a double, then divided.
    return float(money.units * _NANOS + money.nanos) / 1e9


def observed_event(event: event_pb2.Event) -> ObservedEvent:
    has = event.HasField
    return ObservedEvent(
        event_id=_event_id(event.event_id),
        person_id=event.person_id,
        timestamp_us=_micros(event.timestamp),
        received_at_us=_micros(event.received_at),
        type=_TYPES.get(event.type, ""),
        name=event.name,
        channel=_CHANNELS.get(event.channel, ""),
        properties=_LazyProperties(event.properties) if has("properties") else {},
        context=_LazyContext(event.context) if has("context") else {},
        text=event.text,
        group_id=event.group_id,
        sentiment_score=event.sentiment_score if has("sentiment_score") else None,
        revenue=_revenue(event.revenue) if has("revenue") else None,
    )
