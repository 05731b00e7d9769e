"""Protobuf ⇄ journey records. Enums are stored by their short lower-case name (CHANNEL_WEB → "web")."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from google.protobuf import json_format, timestamp_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_datetime as _datetime
from wayline.common.timestamps import to_micros
from wayline.common.timestamps import to_timestamp as _timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import EventRecord, TimelineCursor, TimelineOrder, TimelineQuery
from wayline_journeys.overrides import MAX_OVERRIDES_PER_CALL, PersonOverride
from wayline_journeys.proto_json import JsonMemo, merge_json, to_json

__all__ = [
    "enum_name",
    "event_to_record",
    "events_to_columns",
    "json_number_violations",
    "money",
    "override_from_pb",
    "override_violations",
    "person_overrides",
    "person_to_erase",
    "record_to_event",
    "timeline_query",
]

_MAX_REPORTED_VIOLATIONS = 100  # keeps the BadRequest detail well inside gRPC's trailer size limit

_CHANNEL_PREFIX = "CHANNEL_"
_TYPE_PREFIX = "EVENT_TYPE_"
# Timestamp's range (what ToDatetime and FromDatetime check); the epoch and a microsecond for the arithmetic.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def enum_name(full_name: str, prefix: str) -> str:
    return full_name.removeprefix(prefix).lower()


def _channel_name(value: int) -> str:
    return enum_name(event_pb2.Channel.Name(value), _CHANNEL_PREFIX)  # type: ignore[arg-type]


def _channel_value(name: str) -> event_pb2.Channel.ValueType:
    try:
        return event_pb2.Channel.Value(_CHANNEL_PREFIX + name.upper())
    except ValueError:
        return event_pb2.CHANNEL_UNSPECIFIED


def _type_name(value: int) -> str:
    return enum_name(event_pb2.EventType.Name(value), _TYPE_PREFIX)  # type: ignore[arg-type]


def _type_value(name: str) -> event_pb2.EventType.ValueType:
    try:
        return event_pb2.EventType.Value(_TYPE_PREFIX + name.upper())
    except ValueError:
        return event_pb2.EVENT_TYPE_UNSPECIFIED


def json_number_violations(events: Sequence[event_pb2.Event]) -> list[FieldViolation]:
    """The JSON-like fields holding a number JSON cannot (NaN, Infinity), by path: the store keeps them as
    JSON text. Ingest refuses such events at the door; a write is checked for them only after its
    conversion failed, so a valid write pays nothing."""
    found = []
    for i, event in enumerate(events):
        context = event.context
        for path, struct in (
            ("properties", event.properties),
            ("integrations", event.integrations),
            ("context.extra", context.extra),
            ("context.traits", context.traits),
        ):
            try:
                to_json(struct)
            except ValueError:
                description = "holds NaN or Infinity, which JSON (and so the store) cannot"
                found.append(FieldViolation(f"events[{i}].{path}", description, "OUT_OF_RANGE"))
    return found[:_MAX_REPORTED_VIOLATIONS]


def events_to_columns(events: Iterable[event_pb2.Event]) -> EventColumns:
    """The stored form of events that ingest has already validated, column by column: what WriteEvents
    stores. One tuple per event, transposed at the end; this loop is most of a write's Python."""
    rows = [_stored(event) for event in events]
    return EventColumns(*(list(column) for column in zip(*rows, strict=True))) if rows else EventColumns()


def event_to_record(event: event_pb2.Event) -> EventRecord:
    """The stored form of one event (what events_to_columns stores, as a record)."""
    return events_to_columns([event]).records()[0]


def _stored(event: event_pb2.Event) -> tuple[object, ...]:
    """One event's values in EventColumns' field order."""
    has = event.HasField
    revenue = event.revenue if has("revenue") else None
    return (
        event.event_id,
        _TYPE_NAMES.get(event.type) or _type_name(event.type),
        event.name,
        _CHANNEL_NAMES.get(event.channel) or _channel_name(event.channel),
        _micros(event.timestamp),
        _micros(event.received_at),
        _micros(event.sent_at) if has("sent_at") else None,
        *_identifiers(event),
        event.person_id,
        _properties_json(event.properties) if has("properties") else "{}",
        _context_json(event.context) if has("context") else "{}",
        event.text,
        _money_amount(revenue) if revenue is not None else None,
        revenue.currency_code if revenue is not None else "",
        event.group_id,
        _violations_json(event) if event.plan_violations else "[]",
        event.sentiment_score if has("sentiment_score") else None,
        _micros(event.original_timestamp) if has("original_timestamp") else None,
        _integrations_json(event.integrations) if has("integrations") else "",
        *_previous_identifier(event),
        event.backfill,
    )


# Integrations repeat like contexts do: one SDK setting (`{"All": true}`) for every event of a source.
_properties_json, _context_json, _integrations_json = JsonMemo(), JsonMemo(), JsonMemo()


def _previous_identifier(event: event_pb2.Event) -> tuple[str, str]:
    if not event.HasField("previous_identifier"):
        return "", ""
    previous = event.previous_identifier
    return previous.type, previous.value


def _identifiers(event: event_pb2.Event) -> tuple[list[str], list[str]]:
    identifiers = event.identifiers
    if len(identifiers) == 1:  # the common case
        only = identifiers[0]
        return [only.type], [only.value]
    # One walk: each element read makes a Python object for the message (upb), so two walks (types, then
    # values) cost half again as much for an event's usual three identifiers.
    types, values = [], []
    for identifier in identifiers:
        types.append(identifier.type)
        values.append(identifier.value)
    return types, values


def _micros(timestamp: timestamp_pb2.Timestamp) -> int:
    """Microseconds since the epoch, truncated as Timestamp.ToDatetime truncates (without the datetime)."""
    seconds, nanos = timestamp.seconds, timestamp.nanos
    if _MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000:
        return seconds * 1_000_000 + nanos // 1000
    return to_micros(_datetime(timestamp))  # raises ValueError for what is not a valid Timestamp


def _violations_json(event: event_pb2.Event) -> str:
    violations = [json_format.MessageToDict(v) for v in event.plan_violations]
    return json.dumps(violations, separators=(",", ":"))


_NANOS = Decimal(1_000_000_000)


def _money_amount(money: event_pb2.Money) -> Decimal:
    return Decimal(money.units) + Decimal(money.nanos) / _NANOS


def money(amount: Decimal, currency: str) -> event_pb2.Money:
    """`amount` (at most nine decimal places) as Money in `currency`."""
    units = int(amount)  # truncates toward zero, so units and nanos share the sign as Money requires
    return event_pb2.Money(currency_code=currency, units=units, nanos=int((amount - units) * _NANOS))


def record_to_event(record: EventRecord) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=record.event_id,
        type=_TYPE_VALUES.get(record.type) or _type_value(record.type),
        name=record.name,
        channel=_CHANNEL_VALUES.get(record.channel) or _channel_value(record.channel),
        person_id=record.person_id,
        text=record.text,
        group_id=record.group_id,
    )
    _set_time(event.timestamp, record.timestamp)
    _set_time(event.received_at, record.received_at)
    add = event.identifiers.add
    for identifier_type, value in zip(record.identifier_types, record.identifier_values, strict=True):
        identifier = add()  # then set: half the cost of add(type=..., value=...)
        identifier.type, identifier.value = identifier_type, value
    if record.sent_at is not None:
        _set_time(event.sent_at, record.sent_at)
    if record.original_timestamp is not None:
        _set_time(event.original_timestamp, record.original_timestamp)
    if record.revenue is not None:
        event.revenue.CopyFrom(money(record.revenue, record.revenue_currency))
    if record.plan_violations_json != "[]":
        for violation in json.loads(record.plan_violations_json):
            json_format.ParseDict(violation, event.plan_violations.add())
    if record.sentiment_score is not None:
        event.sentiment_score = record.sentiment_score
    if record.integrations_json:  # "" was never sent; "{}" was, and reads back present and empty
        merge_json(record.integrations_json, event, "integrations")
    if record.previous_identifier_type or record.previous_identifier_value:
        previous = event.previous_identifier
        previous.type, previous.value = record.previous_identifier_type, record.previous_identifier_value
    event.backfill = record.backfill
    merge_json(record.properties_json, event, "properties")  # present even when empty, as json_format left it
    if record.context_json != "{}":
        merge_json(record.context_json, event, "context", ignore_unknown_fields=True)
    return event


def _set_time(field: timestamp_pb2.Timestamp, value: datetime) -> None:
    """field.FromDatetime(value) (what to_timestamp does), without its time tuple for aware datetimes."""
    if value.tzinfo is None:
        field.CopyFrom(_timestamp(value))
        return
    seconds, micros = divmod((value - _EPOCH) // _MICROSECOND, 1_000_000)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        field.CopyFrom(_timestamp(value))  # raises as FromDatetime does
        return
    field.seconds, field.nanos = seconds, micros * 1000


# The enum ⇄ stored name maps, built once: per event, a dict lookup instead of a descriptor walk. A value
# outside them takes the functions above, which raise (writing) or fall back (reading) as they always did.
_TYPE_NAMES = {v.number: enum_name(v.name, _TYPE_PREFIX) for v in event_pb2.EventType.DESCRIPTOR.values}
_CHANNEL_NAMES = {v.number: enum_name(v.name, _CHANNEL_PREFIX) for v in event_pb2.Channel.DESCRIPTOR.values}
_TYPE_VALUES = {enum_name(n, _TYPE_PREFIX): v for n, v in event_pb2.EventType.items()}
_CHANNEL_VALUES = {enum_name(n, _CHANNEL_PREFIX): v for n, v in event_pb2.Channel.items()}


def timeline_query(tenant: str, request: pb.GetTimelineRequest, max_page_size: int) -> TimelineQuery:
    """Validate a GetTimelineRequest and turn it into a query; INVALID_ARGUMENT names each bad field."""
    violations: list[FieldViolation] = []
    subject = request.WhichOneof("subject")
    if subject is None:
        violations.append(FieldViolation("subject", "set person_id or identifier", "REQUIRED"))
    elif subject == "person_id" and not request.person_id:
        violations.append(FieldViolation("person_id", "must not be empty", "REQUIRED"))
    elif subject == "identifier" and not (request.identifier.type and request.identifier.value):
        violations.append(FieldViolation("identifier", "type and value are both required", "REQUIRED"))
    if request.page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative", "OUT_OF_RANGE"))
    if any(c == event_pb2.CHANNEL_UNSPECIFIED for c in request.channels):
        violations.append(FieldViolation("channels", "CHANNEL_UNSPECIFIED is not a channel", "INVALID"))
    time_range = request.time_range
    start = _datetime(time_range.start) if time_range.HasField("start") else None
    end = _datetime(time_range.end) if time_range.HasField("end") else None
    if start and end and start >= end:
        violations.append(FieldViolation("time_range", "start must be before end", "INVALID_RANGE"))
    if violations:
        raise InvalidArgument("the timeline request is invalid; see the field violations", violations)
    after = TimelineCursor.decode(request.page_token) if request.page_token else None
    order = (
        TimelineOrder.NEWEST_FIRST
        if request.order == pb.TIMELINE_ORDER_NEWEST_FIRST
        else TimelineOrder.OLDEST_FIRST
    )
    return TimelineQuery(
        tenant=tenant,
        person_id=request.person_id if subject == "person_id" else "",
        identifier=(request.identifier.type, request.identifier.value) if subject == "identifier" else None,
        channels=tuple(_channel_name(c) for c in request.channels),
        event_names=tuple(request.event_names),
        start=start,
        end=end,
        order=order,
        limit=min(request.page_size or 100, max_page_size),
        after=after,
    )


def person_overrides(request: pb.ApplyPersonOverridesRequest) -> list[PersonOverride]:
    """Validate the overrides of an ApplyPersonOverridesRequest; INVALID_ARGUMENT names each bad field (the
    first hundred) and nothing is recorded."""
    overrides = request.person_overrides
    if len(overrides) > MAX_OVERRIDES_PER_CALL:
        raise InvalidArgument(
            f"at most {MAX_OVERRIDES_PER_CALL} overrides per call; nothing was recorded",
            [FieldViolation("person_overrides", f"{len(overrides)} overrides", "TOO_MANY")],
        )
    violations = [
        v for i, o in enumerate(overrides) for v in override_violations(f"person_overrides[{i}]", o)
    ]
    if violations:
        raise InvalidArgument(
            f"{len(violations)} invalid override fields; nothing was recorded",
            violations[:_MAX_REPORTED_VIOLATIONS],
        )
    return [override_from_pb(o) for o in overrides]


def override_from_pb(override: person_override_pb2.PersonOverride) -> PersonOverride:
    return PersonOverride(
        person_id=override.person_id,
        override_person_id=override.override_person_id,
        version=override.version,
        identifier_type=override.identifier.type,
        identifier_value=override.identifier.value,
        merge_id=override.merge_id,
        create_time=_datetime(override.create_time) if override.HasField("create_time") else None,
        erased=override.erased,
    )


def override_violations(path: str, override: person_override_pb2.PersonOverride) -> list[FieldViolation]:
    """What makes `override` unusable, each a violation of a field under `path`."""
    found = [
        FieldViolation(f"{path}.{name}", "must not be empty", "REQUIRED")
        for name in ("person_id", "override_person_id")
        if not getattr(override, name)
    ]
    if override.version <= 0:
        found.append(FieldViolation(f"{path}.version", "must be positive", "OUT_OF_RANGE"))
    if override.HasField("identifier"):  # unset means person-wide; set means both halves
        found.extend(
            FieldViolation(f"{path}.identifier.{name}", "is required when identifier is set", "REQUIRED")
            for name in ("type", "value")
            if not getattr(override.identifier, name)
        )
    return found


def person_to_erase(request: pb.DeletePersonEventsRequest) -> str:
    if not request.person_id:
        raise InvalidArgument(
            "person_id is required", [FieldViolation("person_id", "must not be empty", "REQUIRED")]
        )
    return request.person_id
