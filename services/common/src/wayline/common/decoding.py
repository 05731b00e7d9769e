"""A request gRPC cannot parse is the caller's error: INVALID_ARGUMENT naming the field, not INTERNAL.

gRPC's server answers INTERNAL ("Exception deserializing request!") when a request's deserializer raises,
before any servicer or interceptor runs. A caller reaches that with bytes protobuf refuses to parse: a
message nested deeper than protobuf's 100 levels (a Struct in an event's properties, 33 objects deep), a
string field holding invalid UTF-8, or a truncated message. `decoding` wraps a handler's deserializer so that
such bytes become an `Undecodable` carrying the refusal, which the interceptor raises inside the call (logged
and counted like any other refusal). `refusal` walks the wire format along the descriptor to name the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor
from google.protobuf.message import DecodeError

from wayline.common.errors import FieldViolation, InvalidArgument

__all__ = ["MAX_DEPTH", "Undecodable", "decoding", "refusal"]

# upb's default recursion limit: a message this many levels below the request is not parsed.
MAX_DEPTH = 100

_TOO_DEEP = f"is nested deeper than the {MAX_DEPTH} levels protobuf parses"

Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True)
class Undecodable:
    """What a wrapped deserializer returns for bytes it cannot parse: the error to answer them with."""

    error: InvalidArgument


def decoding(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer` (a generated message's FromString) answering undecodable bytes with an Undecodable;
    any other deserializer (None: the gateway's pass-through of raw bytes) unchanged."""
    message_type = getattr(deserializer, "__self__", None)
    message = getattr(message_type, "DESCRIPTOR", None)
    if deserializer is None or not isinstance(message, descriptor.Descriptor):
        return deserializer
    parse = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return Undecodable(refusal(message, data))

    return deserialize


def refusal(message: descriptor.Descriptor, data: bytes) -> InvalidArgument:
    """The INVALID_ARGUMENT for `data`, which does not parse as `message`, naming the field where it fails."""
    found = _problem(message, data, "", depth=0, entered={}, kinds=())
    field, why = found or ("", "is not a serialized message of this request's type")
    return InvalidArgument(
        f"the request cannot be parsed: {field or 'the request'} {why}",
        [FieldViolation(field, why, "MALFORMED")],
    )


def _problem(  # noqa: PLR0912 - one pass over the wire format, one branch per wire type
    message: descriptor.Descriptor,
    data: bytes,
    path: str,
    *,
    depth: int,
    entered: dict[str, str],
    kinds: tuple[str, ...],
) -> tuple[str, str] | None:
    """(field path, what is wrong) for the first part of `data` protobuf cannot parse as `message`, or None.
    `entered` maps each message type on the way down (`kinds`) to the path where it was first entered: a
    message nested too deep is named where its recursion starts (`event.properties`), not 100 fields down."""
    counts: dict[int, int] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        if key is None:
            return path, "is truncated"
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(data, position)
            if position < 0:
                return path, "is truncated"
            continue
        if wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
            if position > len(data):
                return path, "is truncated"
            continue
        if wire_type != 2:
            return path, "holds a field of a wire type protobuf no longer parses"
        length, position = _varint(data, position)
        field = message.fields_by_number.get(number)
        name = path
        if field is not None:
            index = counts.get(number, 0)
            counts[number] = index + 1
            name = f"{path}.{field.name}" if path else field.name
            name = f"{name}[{index}]" if field.is_repeated else name
        if length is None or position + length > len(data):
            return name, "is truncated"
        chunk = data[position : position + length]
        position += length
        if field is None:
            continue
        if field.message_type is not None:
            kind = field.message_type.full_name
            inner = entered if kind in entered else {**entered, kind: name}
            below = (*kinds, kind)
            if depth + 1 >= MAX_DEPTH:
                recurring = [entered_at for k, entered_at in inner.items() if below.count(k) > 1]
                return (recurring or [name])[0], _TOO_DEEP
            found = _problem(field.message_type, chunk, name, depth=depth + 1, entered=inner, kinds=below)
            if found is not None:
                return found
        elif field.type == descriptor.FieldDescriptor.TYPE_STRING:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return name, "is not valid UTF-8"
    return None


def _varint(data: bytes, position: int) -> tuple[int | None, int]:
    """The varint at `position` and the position after it; (None, -1) when `data` ends inside it."""
    value = shift = 0
    while position < len(data) and shift < 70:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    return None, -1
