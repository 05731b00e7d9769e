"""Protobuf ⇄ journey records. Enums are stored by their short lower-case name (CHANNEL_WEB → "web")."""

from __future__ import annotations

import json
from decimal import Decimal

from google.protobuf import json_format

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_datetime as _datetime
from wayline.common.timestamps import to_timestamp as _timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.events import EventRecord, TimelineCursor, TimelineOrder, TimelineQuery
from wayline_journeys.overrides import MAX_OVERRIDES_PER_CALL, PersonOverride

__all__ = [
    "enum_name",
    "event_to_record",
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


def enum_name(full_name: str, prefix: str) -> str:
    return full_name.removeprefix(prefix).lower()


def _channel_name(value: int) -> str:
    return enum_name(event_pb2.Channel.Name(value), _CHANNEL_PREFIX)  # type: ignore[arg-type]


def _channel_value(name: str) -> event_pb2.Channel.ValueType:
    try:
        return event_pb2.Channel.Value(_CHANNEL_PREFIX + name.upper())
    except ValueError:
        return event_pb2.CHANNEL_UNSPECIFIED


def _type_value(name: str) -> event_pb2.EventType.ValueType:
    try:
        return event_pb2.EventType.Value(_TYPE_PREFIX + name.upper())
    except ValueError:
        return event_pb2.EVENT_TYPE_UNSPECIFIED


def event_to_record(event: event_pb2.Event) -> EventRecord:
    """The stored form of an event that ingest has already validated."""
    return EventRecord(
        event_id=event.event_id,
        type=enum_name(event_pb2.EventType.Name(event.type), _TYPE_PREFIX),
        name=event.name,
        channel=_channel_name(event.channel),
        timestamp=_datetime(event.timestamp),
        received_at=_datetime(event.received_at),
        sent_at=_datetime(event.sent_at) if event.HasField("sent_at") else None,
        identifier_types=tuple(i.type for i in event.identifiers),
        identifier_values=tuple(i.value for i in event.identifiers),
        person_id=event.person_id,
        properties_json=json_format.MessageToJson(event.properties, indent=None)
        if event.properties
        else "{}",
        context_json=json_format.MessageToJson(event.context, indent=None)
        if event.HasField("context")
        else "{}",
        text=event.text,
        revenue=_money_amount(event.revenue) if event.HasField("revenue") else None,
        revenue_currency=event.revenue.currency_code,
        group_id=event.group_id,
        plan_violations_json=json.dumps(
            [json_format.MessageToDict(v) for v in event.plan_violations], separators=(",", ":")
        ),
        sentiment_score=event.sentiment_score if event.HasField("sentiment_score") else None,
        original_timestamp=_datetime(event.original_timestamp)
        if event.HasField("original_timestamp")
        else None,
    )


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
        type=_type_value(record.type),
        name=record.name,
        channel=_channel_value(record.channel),
        timestamp=_timestamp(record.timestamp),
        received_at=_timestamp(record.received_at),
        identifiers=[
            event_pb2.Identifier(type=t, value=v)
            for t, v in zip(record.identifier_types, record.identifier_values, strict=True)
        ],
        person_id=record.person_id,
        text=record.text,
    )
    if record.sent_at is not None:
        event.sent_at.CopyFrom(_timestamp(record.sent_at))
    if record.original_timestamp is not None:
        event.original_timestamp.CopyFrom(_timestamp(record.original_timestamp))
    if record.revenue is not None:
        event.revenue.CopyFrom(money(record.revenue, record.revenue_currency))
    event.group_id = record.group_id
    for violation in json.loads(record.plan_violations_json):
        json_format.ParseDict(violation, event.plan_violations.add())
    if record.sentiment_score is not None:
        event.sentiment_score = record.sentiment_score
    json_format.Parse(record.properties_json, event.properties)
    if record.context_json != "{}":
        json_format.Parse(record.context_json, event.context, ignore_unknown_fields=True)
    return event


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
