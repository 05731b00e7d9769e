"""Checks and stamps of incoming events, at the service boundary (it reads the wire messages for speed:
this runs for every event, tens of thousands a second).

Every problem becomes a FieldViolation with the path of the field, so a caller can fix its payload without
reading our code. Stamping follows Segment: `received_at` is ours; the sender's `timestamp` is kept as
`original_timestamp`, and when the caller sent `sent_at`, `timestamp` is corrected for the device's clock
skew (timestamp + (received_at - sent_at)). An event without `event_id` gets one derived from its content
(`derive_event_id`), so a retried call gets the same id.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.protobuf import struct_pb2, timestamp_pb2

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, timestamp_violation, to_micros
from wayline.event.v1 import event_pb2

__all__ = [
    "CANONICAL_UUID",
    "EVENT_ID_NAMESPACE",
    "EventLimits",
    "derive_event_id",
    "is_acceptable",
    "stamp",
    "validate_event",
    "violations_of",
]

IDENTIFIER_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # used with fullmatch: `$` would let "user_id\n" in
CURRENCY_CODE = re.compile(r"[A-Z]{3}")  # fullmatch, as IDENTIFIER_TYPE
# uuid.UUID's accepted forms, checked with one regex: the constructor costs several µs per event.
UUID_TEXT = re.compile(
    r"(?:urn:uuid:)?\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?"
)
# The 8-4-4-4-12 form, either case: what the C path vouches for (`_wire.c`) and the sinks take as sent; any
# other form UUID_TEXT lets in is rewritten so by the pipeline.
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_IDENTIFIERS = 32
MAX_IDENTIFIER_VALUE = 512
MAX_NAME = 200
# The namespace of derived event ids: uuid5(NAMESPACE_URL, "https://wayline.dev/ns/event-id"). Fixed forever.
EVENT_ID_NAMESPACE = uuid.UUID("8f6d6f3c-5a3e-5a8e-9a77-3f8a55d1c2b4")

Report = Callable[[str, str, str], None]
# Identity refuses identifiers holding NUL (PostgreSQL's text cannot hold it): refused here, the caller hears
# so, instead of the event being accepted and its identifiers parked as a dead letter.
_NUL = "\x00"
_MAX_IDENTIFIER_TYPE = 64  # IDENTIFIER_TYPE's longest
_KNOWN_TYPES: dict[str, bool] = {}  # identifier types repeat: a dict hit instead of a regex per identifier


def _identifier_type_ok(name: str) -> bool:
    if len(name) > _MAX_IDENTIFIER_TYPE:
        return False  # never kept: an event may carry a type of nearly 32 KiB, ten thousand of them 300 MiB
    known = _KNOWN_TYPES.get(name)
    if known is None:
        if len(_KNOWN_TYPES) > 10_000:  # bounded: a caller sending random types cannot grow it
            _KNOWN_TYPES.clear()
        known = _KNOWN_TYPES[name] = IDENTIFIER_TYPE.fullmatch(name) is not None
    return known


@dataclass(frozen=True)
class EventLimits:
    max_event_bytes: int
    max_future_skew: timedelta
    min_timestamp: datetime
    backfill_min_timestamp: datetime

    # The floors in epoch seconds, computed once: per-event checks compare integers, not datetimes.
    _floors: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        live, backfill = int(self.min_timestamp.timestamp()), int(self.backfill_min_timestamp.timestamp())
        object.__setattr__(self, "_floors", (live, backfill))  # frozen: set once, here

    @property
    def future_skew_nanos(self) -> int:
        """How far past `received_at` a corrected timestamp may lie, in whole microseconds as nanoseconds."""
        return self.max_future_skew // timedelta(microseconds=1) * 1000

    def floor_seconds(self, backfill: bool) -> int:
        """The timestamp floor (live or backfill) in epoch seconds."""
        return self._floors[backfill]


_TRACK, _GROUP = event_pb2.EVENT_TYPE_TRACK, event_pb2.EVENT_TYPE_GROUP
# The values this build knows. The wire carries any number in an enum field (a newer client's, or garbage),
# and every sink names the value when it stores it: an unknown one would be accepted here and then refused
# downstream, parked as a dead letter after the caller heard OK.
_EVENT_TYPES = frozenset(v.number for v in event_pb2.EventType.DESCRIPTOR.values) - {0}
_CHANNELS = frozenset(v.number for v in event_pb2.Channel.DESCRIPTOR.values) - {0}


def is_acceptable(event: event_pb2.Event, limits: EventLimits, backfill: bool = False) -> bool:
    """The fast path: True when `validate_event` would find nothing. Reads each field once, builds no
    violation; most events pass here, and only the others pay for the detailed report. Events with revenue
    go to the detailed check."""
    if event.ByteSize() > limits.max_event_bytes or event.HasField("revenue"):
        return False
    kind, name = event.type, event.name
    if kind not in _EVENT_TYPES or event.channel not in _CHANNELS or len(name) > MAX_NAME:
        return False
    if (kind == _TRACK and not name) or (kind == _GROUP and not event.group_id):
        return False
    event_id = event.event_id
    if event_id and not UUID_TEXT.fullmatch(event_id):
        return False
    if event.person_id or event.plan_violations or event.HasField("sentiment_score"):
        return False
    identifiers = event.identifiers
    if not identifiers or len(identifiers) > MAX_IDENTIFIERS:
        return False
    for identifier in identifiers:
        value = identifier.value
        if not value or value.isspace() or len(value) > MAX_IDENTIFIER_VALUE or _NUL in value:
            return False
        if not _identifier_type_ok(identifier.type):
            return False
    floor = limits.floor_seconds(backfill)
    times = ((event.timestamp, event.HasField("timestamp")), (event.sent_at, event.HasField("sent_at")))
    for ts, present in times:
        if present and not (floor <= ts.seconds <= MAX_TIMESTAMP_SECONDS and 0 <= ts.nanos < _BILLION):
            return False
    return all(_all_finite(struct) for _, struct in _structs(event))


def validate_event(
    event: event_pb2.Event, path: str, limits: EventLimits, *, backfill: bool = False
) -> list[FieldViolation]:
    """Every reason `event` cannot be accepted; empty when it can. `path` prefixes field paths."""
    if is_acceptable(event, limits, backfill):
        return []
    return violations_of(event, path, limits, backfill=backfill)


def violations_of(
    event: event_pb2.Event, path: str, limits: EventLimits, *, backfill: bool = False
) -> list[FieldViolation]:
    """The detailed check: every violation with its path (the slow path, for events the fast one refused)."""
    found: list[FieldViolation] = []

    def report(field: str, description: str, reason: str) -> None:
        found.append(FieldViolation(f"{path}.{field}" if path else field, description, reason))

    size = event.ByteSize()
    if size > limits.max_event_bytes:
        description = f"the event is {size} bytes serialised; at most {limits.max_event_bytes}"
        return [FieldViolation(path or "event", description, "TOO_LARGE")]
    _check_kind(event, report)
    _check_identifiers(event, report)
    if event.HasField("revenue"):
        _check_revenue(event.revenue, report)
    _check_time(event, limits, backfill, report)
    _check_numbers(event, report)
    return found


def _check_kind(event: event_pb2.Event, report: Report) -> None:
    event_id, kind, name = event.event_id, event.type, event.name  # each read builds a Python object
    if event_id and not UUID_TEXT.fullmatch(event_id):
        report("event_id", "must be a UUID (it is the deduplication key)", "INVALID_UUID")
    if kind == event_pb2.EVENT_TYPE_UNSPECIFIED:
        report("type", "set the event type (track, identify, page, screen, alias, group)", "REQUIRED")
    elif kind not in _EVENT_TYPES:
        report("type", f"{kind} is not an EventType this service knows", "UNKNOWN_ENUM_VALUE")
    elif kind == event_pb2.EVENT_TYPE_TRACK and not name:
        report("name", "track events need a name, such as 'Order Completed'", "REQUIRED")
    elif kind == event_pb2.EVENT_TYPE_GROUP and not event.group_id:
        report("group_id", "group events need the group (account, household) they join", "REQUIRED")
    if len(name) > MAX_NAME:
        report("name", f"at most {MAX_NAME} characters", "TOO_LONG")
    channel = event.channel
    if channel == event_pb2.CHANNEL_UNSPECIFIED:
        report("channel", "set the channel the touchpoint happened on", "REQUIRED")
    elif channel not in _CHANNELS:
        report("channel", f"{channel} is not a Channel this service knows", "UNKNOWN_ENUM_VALUE")
    if event.person_id:
        report("person_id", "is set by Wayline's identity service, never by callers", "NOT_ALLOWED")
    if event.plan_violations:
        report("plan_violations", "is set by ingest's tracking-plan check, never by callers", "NOT_ALLOWED")
    if event.HasField("sentiment_score"):
        report("sentiment_score", "is set by ingest's enrichment, never by callers", "NOT_ALLOWED")


def _check_time(event: event_pb2.Event, limits: EventLimits, backfill: bool, report: Report) -> None:
    floor_seconds = limits.floor_seconds(backfill)
    for name in ("timestamp", "sent_at"):
        if not event.HasField(name):
            continue
        ts = getattr(event, name)
        invalid = timestamp_violation(ts, name)
        if invalid is not None:
            report(invalid.field, invalid.description, invalid.reason)
        elif ts.seconds < floor_seconds:
            report(name, _before_floor(limits, backfill), "OUT_OF_RANGE")


def _before_floor(limits: EventLimits, backfill: bool) -> str:
    floor = limits.backfill_min_timestamp if backfill else limits.min_timestamp
    hint = "" if backfill else "; send history as a backfill batch (wayline import does)"
    return f"lies before {floor.date().isoformat()}{hint}"


def _structs(event: event_pb2.Event) -> Iterator[tuple[str, struct_pb2.Struct]]:
    """The event's JSON-like fields, by path."""
    yield "properties", event.properties
    yield "integrations", event.integrations
    if event.HasField("context"):
        yield "context.extra", event.context.extra
        yield "context.traits", event.context.traits


# Two walks over the same values, as `is_acceptable` and `violations_of` are two checks of one event: the
# fast one builds no path string, the reporting one runs only for events the fast one refused.
def _all_finite(struct: struct_pb2.Struct) -> bool:
    return all(_finite(value) for value in struct.fields.values())


def _finite(value: struct_pb2.Value) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return math.isfinite(value.number_value)
    if kind == "struct_value":
        return _all_finite(value.struct_value)
    if kind == "list_value":
        return all(_finite(item) for item in value.list_value.values)
    return True


def _non_finite_paths(value: struct_pb2.Value, path: str) -> Iterator[str]:
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        yield path
    elif kind == "struct_value":
        yield from _non_finite_in(value.struct_value, path)
    elif kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            yield from _non_finite_paths(item, f"{path}[{i}]")


def _non_finite_in(struct: struct_pb2.Struct, path: str) -> Iterator[str]:
    for key in sorted(struct.fields):
        yield from _non_finite_paths(struct.fields[key], f"{path}.{key}")


def _check_numbers(event: event_pb2.Event, report: Report) -> None:
    """JSON has no NaN or Infinity: a number that is one could not be stored with the event (the journey
    store keeps these fields as JSON) nor read back by any JSON client."""
    for path, struct in _structs(event):
        for found in _non_finite_in(struct, path):
            report(found, "must be a finite number: JSON holds no NaN or Infinity", "OUT_OF_RANGE")


def _check_identifiers(event: event_pb2.Event, report: Report) -> None:
    identifiers = event.identifiers
    if not identifiers:
        report(
            "identifiers",
            "at least one identifier (anonymous_id, user_id, email, ...) is required",
            "REQUIRED",
        )
    if len(identifiers) > MAX_IDENTIFIERS:
        report("identifiers", f"at most {MAX_IDENTIFIERS} identifiers", "TOO_MANY")
    for i, identifier in enumerate(identifiers):
        if not _identifier_type_ok(identifier.type):
            report(f"identifiers[{i}].type", "lower_snake_case name such as user_id or email", "INVALID_TYPE")
        value = identifier.value
        if not value or value.isspace():
            report(f"identifiers[{i}].value", "must not be empty", "REQUIRED")
        elif len(value) > MAX_IDENTIFIER_VALUE:
            report(f"identifiers[{i}].value", f"at most {MAX_IDENTIFIER_VALUE} characters", "TOO_LONG")
        elif _NUL in value:
            report(f"identifiers[{i}].value", "must not contain NUL (U+0000)", "INVALID")


def _check_revenue(money: event_pb2.Money, report: Report) -> None:
    if not CURRENCY_CODE.fullmatch(money.currency_code):
        report("revenue.currency_code", "a three-letter ISO 4217 code such as EUR", "INVALID_CURRENCY")
    if not -999_999_999 <= money.nanos <= 999_999_999:
        report("revenue.nanos", "must lie in [-999999999, 999999999]", "OUT_OF_RANGE")
    if (money.units > 0 > money.nanos) or (money.units < 0 < money.nanos):
        report("revenue.nanos", "must have the sign of units", "SIGN_MISMATCH")


def derive_event_id(tenant: str, event: event_pb2.Event) -> str:
    """A UUIDv5 over the tenant and the event's deterministic bytes as sent: the same event always gets
    the same id, so a retried call without ids is stored once."""
    digest = hashlib.sha1(  # noqa: S324 - UUIDv5 is defined over SHA-1; this is naming, not security
        EVENT_ID_NAMESPACE.bytes + tenant.encode() + b"\0" + event.SerializeToString(deterministic=True)
    ).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


_BILLION = 1_000_000_000


def _nanos(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * _BILLION + ts.nanos


def _set_nanos(ts: timestamp_pb2.Timestamp, nanos: int) -> None:
    ts.seconds, ts.nanos = divmod(nanos, _BILLION)


def stamp(
    tenant: str,
    event: event_pb2.Event,
    path: str,
    received_at: datetime,
    limits: EventLimits,
    *,
    backfill: bool = False,
) -> list[FieldViolation]:
    """Stamp ingest's fields in place: event id if missing, received_at, original and skew-corrected
    timestamps. Returns the violation when the corrected timestamp lies too far in the future, or before the
    floor (a `sent_at` far ahead of the device's `timestamp`: the correction moves it back as far).

    Arithmetic is on integer nanoseconds, not datetimes: this runs for every event."""
    if not event.event_id:
        event.event_id = derive_event_id(tenant, event)
    received = to_micros(received_at) * 1000
    _set_nanos(event.received_at, received)
    if not event.HasField("timestamp"):
        event.ClearField("original_timestamp")
        event.timestamp.CopyFrom(event.received_at)
        happened = received
    else:
        event.original_timestamp.CopyFrom(event.timestamp)
        happened = _nanos(event.timestamp)
        if event.HasField("sent_at"):
            happened += received - _nanos(event.sent_at)
            _set_nanos(event.timestamp, happened)
    field = f"{path}.timestamp" if path else "timestamp"
    if happened > received + limits.future_skew_nanos:
        return [FieldViolation(field, "lies in the future; check the device clock", "FUTURE_TIMESTAMP")]
    if happened < limits.floor_seconds(backfill) * _BILLION:
        why = f"corrected for the device's clock (received_at - sent_at), {_before_floor(limits, backfill)}"
        return [FieldViolation(field, why, "OUT_OF_RANGE")]
    return []
