"""What a request's fields must satisfy before the orchestrator converts or stores them, shared by every RPC's
converters so that bad input is INVALID_ARGUMENT naming the field, never an error deep in a conversion or a
store (INTERNAL), and the same answer on SQLite and PostgreSQL.

- Ids and other strings stored in their own columns: PostgreSQL's text cannot hold NUL (psycopg raises
  DataError) while SQLite stores it, so NUL is refused on both engines alike.
- Timestamps and Durations: the wire carries any int64 seconds and int32 nanos; outside protobuf's documented
  ranges a time in microseconds no longer fits the stores' 64-bit columns, and the JSON form of a definition
  cannot be written at all.
- Struct numbers: JSON has no NaN or Infinity, so a Struct holding one cannot be converted to the JSON form
  flows and events are read in.
- Enumeration numbers this build does not define (their JSON form would be a bare number).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import duration_violation, timestamp_violation

__all__ = [
    "MAX_ID_LENGTH",
    "id_violations",
    "invalid_values",
    "struct_violations",
    "text_violation",
]

MAX_ID_LENGTH = 256
_NUL = "\x00"
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR
_DURATION = duration_pb2.Duration.DESCRIPTOR
_STRUCT = struct_pb2.Struct.DESCRIPTOR
_VALUE = struct_pb2.Value.DESCRIPTOR
_LIST_VALUE = struct_pb2.ListValue.DESCRIPTOR


def text_violation(path: str, value: str) -> FieldViolation | None:
    """Why `value` cannot be stored as text (the field at `path`), or None."""
    if _NUL in value:  # a C-level scan: cheap enough for CheckContact's path
        return FieldViolation(path, "must not contain the NUL character (\\u0000)", "INVALID_CHARACTER")
    return None


def id_violations(path: str, value: str) -> list[FieldViolation]:
    """A required id's problems: empty, longer than MAX_ID_LENGTH, or holding NUL."""
    if not value:
        return [FieldViolation(path, "is required", "REQUIRED")]
    if len(value) > MAX_ID_LENGTH:
        return [FieldViolation(path, f"is longer than {MAX_ID_LENGTH} characters", "TOO_LONG")]
    problem = text_violation(path, value)
    return [problem] if problem is not None else []


def struct_violations(value: Message, path: str) -> Iterator[FieldViolation]:
    """Every number in a Struct, Value or ListValue that JSON cannot carry (NaN, ±Infinity), with its path
    (a Struct's keys as `path.key`, a list's items as `path[i]`)."""
    kind = value.DESCRIPTOR
    if kind is _STRUCT:
        for key, item in value.fields.items():  # type: ignore[attr-defined]
            yield from struct_violations(item, f"{path}.{key}")
    elif kind is _LIST_VALUE:
        for i, item in enumerate(value.values):  # type: ignore[attr-defined]
            yield from struct_violations(item, f"{path}[{i}]")
    elif kind is _VALUE:
        which = value.WhichOneof("kind")
        if which == "number_value" and not math.isfinite(value.number_value):  # type: ignore[attr-defined]
            yield FieldViolation(path, "must be a finite number (JSON has no NaN or Infinity)", "NOT_FINITE")
        elif which in {"struct_value", "list_value"}:
            yield from struct_violations(getattr(value, which), path)


def invalid_values(message: Message, path: str) -> Iterator[FieldViolation]:
    """Every value in `message` (nested messages included, `path` their parent's) that cannot be converted
    to its JSON form or stored: an enumeration number its enumeration does not define, a Timestamp or
    Duration outside its documented range (or with nanos of the wrong sign), a Struct number NaN or ±Inf."""
    kind = message.DESCRIPTOR
    if kind is _TIMESTAMP:
        problem = timestamp_violation(message, path)  # type: ignore[arg-type]
        if problem is not None:
            yield problem
        return
    if kind is _DURATION:
        problem = duration_violation(message, path)  # type: ignore[arg-type]
        if problem is not None:
            yield problem
        return
    if kind in {_STRUCT, _VALUE, _LIST_VALUE}:
        yield from struct_violations(message, path)
        return
    for field, value in message.ListFields():
        here = f"{path}.{field.name}"
        repeated = field.is_repeated
        if field.enum_type is not None:
            for i, number in enumerate(value if repeated else [value]):
                if field.enum_type.values_by_number.get(number) is None:
                    where = f"{here}[{i}]" if repeated else here
                    yield FieldViolation(
                        where, f"{number} is not a value of {field.enum_type.name}", "UNKNOWN_ENUM_VALUE"
                    )
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for i, item in enumerate(value if repeated else [value]):
                yield from invalid_values(item, f"{here}[{i}]" if repeated else here)
