"""Python values → the contract's messages, checked cheaply on the caller's thread.

The checks are the ones a caller can get wrong without reading the server's code (a required field left
empty, an identifier type that can never match, a naive datetime, a value JSON cannot carry). They mirror
ingest's own rules where those are fixed by the contract; limits a server may configure (timestamp floors,
tracking plans) stay the server's to judge and come back as rejections.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeAlias

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from wayline.client.errors import InvalidEvent
from wayline.common.json_messages import message_from_json
from wayline.event.v1 import event_pb2

__all__ = [
    "ChannelLike",
    "ContextLike",
    "IdentifiersLike",
    "channel_value",
    "context_message",
    "event_id",
    "identifier_list",
    "money",
    "properties_struct",
    "timestamp_message",
]

IDENTIFIER_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # fullmatch: `$` would let "user_id\n" in
CURRENCY_CODE = re.compile(r"[A-Z]{3}")  # fullmatch, as IDENTIFIER_TYPE
MAX_IDENTIFIERS = 32
MAX_IDENTIFIER_VALUE = 512
_NANOS = Decimal(1_000_000_000)

ChannelLike: TypeAlias = "event_pb2.Channel.ValueType | str"
IdentifiersLike: TypeAlias = "Mapping[str, str] | Iterable[event_pb2.Identifier | tuple[str, str]]"
ContextLike: TypeAlias = "event_pb2.EventContext | Mapping[str, Any]"


_CHANNELS = {
    **{name: value for name, value in event_pb2.Channel.items() if value},
    **{name.removeprefix("CHANNEL_").lower(): value for name, value in event_pb2.Channel.items() if value},
}
_CHANNEL_VALUES = frozenset(_CHANNELS.values())


def channel_value(channel: ChannelLike | None) -> event_pb2.Channel.ValueType:
    """`event_pb2.CHANNEL_WEB`, `"web"` and `"CHANNEL_WEB"` all name the web channel."""
    if channel is None:
        raise InvalidEvent("channel", "is required: pass channel= here or to Client(channel=...)")
    if isinstance(channel, str):
        found = _CHANNELS.get(channel) or _CHANNELS.get(channel.lower()) or _CHANNELS.get(channel.upper())
        if found is None:
            known = ", ".join(name for name in _CHANNELS if not name.startswith("CHANNEL_"))
            raise InvalidEvent("channel", f"unknown channel {channel!r}; one of {known}")
        return found
    if channel not in _CHANNEL_VALUES:
        raise InvalidEvent("channel", f"{channel!r} is not a channel of wayline.event.v1.Channel")
    return channel


def identifier_list(identifiers: IdentifiersLike) -> list[event_pb2.Identifier]:
    """A mapping type → value, or a list of `Identifier` messages or (type, value) pairs."""
    pairs: Iterable[event_pb2.Identifier | tuple[str, str]]
    pairs = identifiers.items() if isinstance(identifiers, Mapping) else identifiers
    found: list[event_pb2.Identifier] = []
    for index, item in enumerate(pairs):
        kind, value = (item.type, item.value) if isinstance(item, event_pb2.Identifier) else item
        where = f"identifiers[{index}]"
        if not isinstance(kind, str) or not IDENTIFIER_TYPE.fullmatch(kind):
            raise InvalidEvent(f"{where}.type", f"{kind!r} must be lower_snake_case, such as 'user_id'")
        if not isinstance(value, str) or not value:
            raise InvalidEvent(f"{where}.value", f"the {kind} must be a non-empty string")
        if len(value) > MAX_IDENTIFIER_VALUE:
            raise InvalidEvent(f"{where}.value", f"at most {MAX_IDENTIFIER_VALUE} characters")
        found.append(event_pb2.Identifier(type=kind, value=value))
    if not found:
        raise InvalidEvent("identifiers", "at least one identifier, such as {'user_id': 'u-42'}")
    if len(found) > MAX_IDENTIFIERS:
        raise InvalidEvent("identifiers", f"at most {MAX_IDENTIFIERS} identifiers per event")
    return found


def properties_struct(properties: Mapping[str, Any] | None, field: str = "properties") -> struct_pb2.Struct:
    """JSON-like properties; datetimes become ISO 8601, decimals numbers, UUIDs and enums their value."""
    struct = struct_pb2.Struct()
    if properties:
        struct.update(_jsonable(properties, field))
    return struct


def _jsonable(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        return _json_number(value, path)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise InvalidEvent(path, f"keys must be strings, not {type(key).__name__}")
        return {key: _jsonable(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return _jsonable(value.value, path)
    raise InvalidEvent(path, f"{type(value).__name__} values cannot be sent; use JSON-like values")


def _json_number(value: int | float | Decimal, path: str) -> int | float:
    """A number as a Struct holds it (a double): NaN, the infinities and integers past a double's range
    are refused here, on the caller's thread, as ingest would refuse them after the send."""
    try:
        number = float(value)
    except OverflowError:
        raise InvalidEvent(path, "is an integer past what a JSON number holds (about 1.8e308)") from None
    if not math.isfinite(number):
        raise InvalidEvent(path, "must be a finite number: JSON has no NaN or infinity")
    return value if isinstance(value, int) else number


def context_message(context: ContextLike | None) -> event_pb2.EventContext:
    """An `EventContext`, or a mapping in its JSON form (`{"locale": "de-DE", "page": {"url": ...}}`)."""
    message = event_pb2.EventContext()
    if isinstance(context, event_pb2.EventContext):
        message.CopyFrom(context)
    elif context:
        try:
            message_from_json(_jsonable(context, "context"), message)
        except json_format.ParseError as error:
            raise InvalidEvent("context", str(error)) from None
    return message


def timestamp_message(value: datetime, field: str = "timestamp") -> timestamp_pb2.Timestamp:
    """A Timestamp from an aware datetime; a naive one is refused rather than guessed at."""
    if not isinstance(value, datetime):
        raise InvalidEvent(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(field, "must be timezone-aware, for example datetime.now(UTC)")
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def event_id(value: str | None) -> str:
    """The caller's event id checked as a UUID, or a fresh UUIDv4: the id every retry will carry."""
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidEvent("event_id", f"{value!r} is not a UUID (it is the deduplication key)") from None


def money(amount: Decimal | int | str, currency_code: str) -> event_pb2.Money:
    """An exact amount of money: `money("59.90", "EUR")`. Floats are refused, since they are inexact."""
    if not isinstance(currency_code, str) or not CURRENCY_CODE.fullmatch(currency_code):
        raise InvalidEvent("revenue.currency_code", f"{currency_code!r} is not an ISO 4217 code like 'EUR'")
    if isinstance(amount, float | bool):
        raise InvalidEvent("revenue", "pass the amount as a Decimal, int or str, such as '59.90'")
    try:
        exact = Decimal(amount)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidEvent("revenue", f"{amount!r} is not an amount") from None
    if not exact.is_finite():
        raise InvalidEvent("revenue", f"{amount!r} is not a finite amount")
    units = int(exact)  # truncates toward zero, so units and nanos share the sign
    nanos = (exact - units) * _NANOS
    if nanos != nanos.to_integral_value():
        raise InvalidEvent("revenue", f"{amount!r} has more than nine decimal places")
    return event_pb2.Money(currency_code=currency_code, units=units, nanos=int(nanos))
