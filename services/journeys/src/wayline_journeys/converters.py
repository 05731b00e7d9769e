"""Protobuf ⇄ journey records. Enums are stored by their short lower-case name (CHANNEL_WEB → "web")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from google.protobuf import json_format, timestamp_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.response_size import fitting
from wayline.common.timestamps import (
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    timestamp_violation,
    to_micros,
)
from wayline.common.timestamps import to_datetime as _datetime
from wayline.common.timestamps import to_timestamp as _timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.erasures import PersonToErase
from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import (
    MAX_WRITE_EVENTS,
    EventRecord,
    TimelineCursor,
    TimelineOrder,
    TimelinePage,
    TimelineQuery,
    cursor_after,
)
from wayline_journeys.overrides import MAX_OVERRIDES_PER_CALL, PersonOverride
from wayline_journeys.person_pages import request_fingerprint
from wayline_journeys.proto_json import JsonMemo, merge_json, to_json

__all__ = [
    "STORED_UUID",
    "channel_names",
    "checked_time",
    "columns_to_write",
    "enum_name",
    "event_to_record",
    "event_type_name",
    "events_to_columns",
    "money",
    "override_from_pb",
    "override_violations",
    "person_overrides",
    "person_to_erase",
    "persons_to_erase",
    "record_to_event",
    "time_bounds",
    "timeline_query",
    "timeline_response",
]

_MAX_REPORTED_VIOLATIONS = 100  # keeps the BadRequest detail well inside gRPC's trailer size limit

_CHANNEL_PREFIX = "CHANNEL_"
_TYPE_PREFIX = "EVENT_TYPE_"
# The epoch and a microsecond, for the arithmetic.
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


def checked_time(
    timestamp: timestamp_pb2.Timestamp, path: str, violations: list[FieldViolation]
) -> datetime | None:
    """`timestamp` (the request's field at `path`) as a datetime, or None after recording why it is not a
    valid Timestamp: the wire carries any int64 seconds, which ToDatetime would refuse with a ValueError (an
    INTERNAL answer) instead of a violation naming the field."""
    found = timestamp_violation(timestamp, path)
    if found is not None:
        violations.append(found)
        return None
    return _datetime(timestamp)


def time_bounds(
    message: event_pb2.TimeRange, path: str, violations: list[FieldViolation]
) -> tuple[datetime | None, datetime | None]:
    """(start, end) of a request's TimeRange (the field at `path`), None for a bound unset or invalid (each
    invalid bound recorded as a violation, as an inverted range is)."""
    start = checked_time(message.start, f"{path}.start", violations) if message.HasField("start") else None
    end = checked_time(message.end, f"{path}.end", violations) if message.HasField("end") else None
    if start is not None and end is not None and start >= end:
        violations.append(FieldViolation(path, "start must be before end", "INVALID_RANGE"))
    return start, end


def channel_names(values: Iterable[int], path: str, violations: list[FieldViolation]) -> tuple[str, ...]:
    """The stored names of a request's channel filter (the repeated field at `path`), after recording a
    violation of the field for CHANNEL_UNSPECIFIED or a number the contract does not define (the wire
    carries any enum number; the enum's Name() raised ValueError for it, an INTERNAL answer)."""
    names, bad = [], []
    for value in values:
        name = _CHANNEL_NAMES.get(value)
        if name is None or value == event_pb2.CHANNEL_UNSPECIFIED:
            bad.append(value)
        else:
            names.append(name)
    if bad:
        violations.append(
            FieldViolation(path, f"not channels: {', '.join(map(_channel_label, bad))}", "INVALID")
        )
    return tuple(names)


def _channel_label(value: int) -> str:
    return "CHANNEL_UNSPECIFIED" if value == event_pb2.CHANNEL_UNSPECIFIED else str(value)


def event_type_name(value: int, path: str, violations: list[FieldViolation]) -> str:
    """The stored name of a request's event type (the field at `path`; '' for EVENT_TYPE_UNSPECIFIED, any
    type), or '' after recording a violation for a number the contract does not define."""
    if value == event_pb2.EVENT_TYPE_UNSPECIFIED:
        return ""
    name = _TYPE_NAMES.get(value)
    if name is None:
        violations.append(FieldViolation(path, f"{value} is not an EventType", "INVALID"))
        return ""
    return name


# The forms of a UUID the store parses into its UUID column: hyphens all or none, no braces or `urn:uuid:`.
STORED_UUID = re.compile(r"[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}")


def columns_to_write(events: Sequence[event_pb2.Event]) -> EventColumns:
    """WriteEvents' events validated and in their stored form; INVALID_ARGUMENT naming each bad field (the
    first hundred) otherwise, and then nothing of the call is stored, valid events included: WriteEvents
    takes or refuses a call as a whole, as ingest's forwarder sends and resends it."""
    if len(events) > MAX_WRITE_EVENTS:
        raise InvalidArgument(
            f"WriteEvents takes at most {MAX_WRITE_EVENTS:,} events per call; got {len(events):,}: split "
            "the batch; nothing was stored",
            [FieldViolation("events", f"at most {MAX_WRITE_EVENTS:,} events", "TOO_MANY")],
        )
    missing = [
        FieldViolation(f"events[{i}].{field}", f"every stored event needs its {field}", "REQUIRED")
        for i, event in enumerate(events)
        for field in ("event_id", "timestamp")
        if not (event.event_id if field == "event_id" else event.HasField("timestamp"))
    ]
    if missing:
        raise InvalidArgument("every event needs event_id and timestamp; nothing was stored", missing)
    not_uuids = [
        FieldViolation(f"events[{i}].event_id", "must be a UUID (8-4-4-4-12 hex digits)", "INVALID_UUID")
        for i, event in enumerate(events)
        if not STORED_UUID.fullmatch(event.event_id)
    ]
    if not_uuids:
        # The store's column is a UUID: its INSERT failed for the whole group commit, others' rows included.
        raise InvalidArgument(
            "every event_id must be a UUID; nothing was stored", not_uuids[:_MAX_REPORTED_VIOLATIONS]
        )
    try:
        # The conversion checks each time and enum as it goes (a range comparison, a dict lookup) and raises
        # ValueError at the first it cannot store; only then are the events walked again for every bad field,
        # so that a valid write, the hot path, pays nothing for the report.
        return events_to_columns(events)
    except ValueError:
        violations = _event_violations(events)
        if not violations:
            raise
        shown = violations[:_MAX_REPORTED_VIOLATIONS]
        raise InvalidArgument(f"{len(violations)} invalid event fields; nothing was stored", shown) from None


def _event_violations(events: Sequence[event_pb2.Event]) -> list[FieldViolation]:
    """Every field of `events` the store cannot hold, by path: a time outside Timestamp's range, an enum
    number the contract does not define, a number JSON cannot (NaN, Infinity) in a JSON-like field (the
    store keeps those as JSON text). Ingest refuses such events at the door; WriteEvents looks for them only
    after its conversion failed."""
    found: list[FieldViolation] = []
    for i, event in enumerate(events):
        for name, timestamp in _stored_times(event):
            bad = timestamp_violation(timestamp, f"events[{i}].{name}")
            if bad is not None:
                found.append(bad)
        if event.type not in _TYPE_NAMES:
            found.append(FieldViolation(f"events[{i}].type", f"{event.type} is not an EventType"))
        if event.channel not in _CHANNEL_NAMES:
            found.append(FieldViolation(f"events[{i}].channel", f"{event.channel} is not a Channel"))
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
    return found


def _stored_times(event: event_pb2.Event) -> Iterator[tuple[str, timestamp_pb2.Timestamp]]:
    """The Timestamp fields of `event` that _stored converts, by name: the first two even when unset."""
    yield "timestamp", event.timestamp
    yield "received_at", event.received_at
    if event.HasField("sent_at"):
        yield "sent_at", event.sent_at
    if event.HasField("original_timestamp"):
        yield "original_timestamp", event.original_timestamp


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
    if MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS and 0 <= nanos < 1_000_000_000:
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
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
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
    channels = channel_names(request.channels, "channels", violations)
    start, end = time_bounds(request.time_range, "time_range", violations)
    if violations:
        raise InvalidArgument("the timeline request is invalid; see the field violations", violations)
    binding = _timeline_binding(tenant, request)
    after = TimelineCursor.decode(request.page_token, binding) if request.page_token else None
    order = (
        TimelineOrder.NEWEST_FIRST
        if request.order == pb.TIMELINE_ORDER_NEWEST_FIRST
        else TimelineOrder.OLDEST_FIRST
    )
    return TimelineQuery(
        tenant=tenant,
        person_id=request.person_id if subject == "person_id" else "",
        identifier=(request.identifier.type, request.identifier.value) if subject == "identifier" else None,
        channels=channels,
        event_names=tuple(request.event_names),
        start=start,
        end=end,
        order=order,
        limit=min(request.page_size or 100, max_page_size),
        after=after,
        binding=binding,
    )


def _timeline_binding(tenant: str, request: pb.GetTimelineRequest) -> str:
    """What a page token of `request` is bound to: the tenant, the subject, the filters and the order (the
    request less page_size, which may change from page to page, and page_token). A cursor of one query used
    with another would silently skip that query's events up to it."""
    bound = pb.GetTimelineRequest()
    bound.CopyFrom(request)
    bound.ClearField("page_size")
    bound.ClearField("page_token")
    return request_fingerprint(tenant, bound)


def timeline_response(query: TimelineQuery, page: TimelinePage) -> pb.GetTimelineResponse:
    """The page as GetTimelineResponse, with the token of the next page when this one is full: `page_size`
    events, or as many as fit a response (`fitting`: large events would pass what a client receives)."""
    records = page.events
    events = [record_to_event(r) for r in records]
    kept = fitting(events)
    full = kept < len(records) or len(records) == query.limit
    token = cursor_after(records[kept - 1]).encode(query.binding) if full else ""
    return pb.GetTimelineResponse(events=events[:kept], next_page_token=token, person_id=page.person_id)


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
    """An override override_violations found nothing wrong with (its create_time converts)."""
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
    if override.HasField("create_time"):
        bad = timestamp_violation(override.create_time, f"{path}.create_time")
        if bad is not None:
            found.append(bad)
    return found


_MAX_PERSONS_TO_ERASE = 1000


def person_to_erase(request: pb.DeletePersonEventsRequest) -> PersonToErase:
    if not request.person_id:
        raise InvalidArgument(
            "person_id is required", [FieldViolation("person_id", "must not be empty", "REQUIRED")]
        )
    return _to_erase(request)


def persons_to_erase(request: pb.BatchDeletePersonEventsRequest) -> list[PersonToErase]:
    """The persons of a BatchDeletePersonEvents call: 1 to 1,000, each with a person id."""
    if not 1 <= len(request.requests) <= _MAX_PERSONS_TO_ERASE:
        raise InvalidArgument(
            f"requests must name 1 to {_MAX_PERSONS_TO_ERASE:,} persons; it names {len(request.requests):,}",
            [FieldViolation("requests", f"1 to {_MAX_PERSONS_TO_ERASE:,} persons")],
        )
    missing = [i for i, r in enumerate(request.requests) if not r.person_id]
    if missing:
        raise InvalidArgument(
            f"{len(missing):,} requests lack person_id",
            [
                FieldViolation(f"requests[{i}].person_id", "must not be empty", "REQUIRED")
                for i in missing[:_MAX_REPORTED_VIOLATIONS]
            ],
        )
    return [_to_erase(r) for r in request.requests]


def _to_erase(request: pb.DeletePersonEventsRequest) -> PersonToErase:
    return PersonToErase(request.person_id, tuple((i.type, i.value) for i in request.identifiers))
