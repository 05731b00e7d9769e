"""What the contact policy learns from a person's events (the contract's ContactPolicy comments): a
`Consent Updated` event states consent for a channel (or `all`) and a purpose (or `all`); a `Channel
Preference Updated` event states the preferred channel; any event's `context.timezone` is the person's time
zone. The latest statement of each kind wins, so replays and late events are harmless. An engagement event
(`Message Opened`, `Message Clicked`, `Message Replied` with the message's `contact_id`) feeds the learned
channel preference (`contacts/engagement.py`); each message counts once per kind, so replays are harmless
there too.

A statement that cannot be read (an unknown channel, a missing `granted`) is skipped and logged rather than
refused: the event is valid for journeys and flows, only its meaning for the contact policy is lost. An event
that cannot be converted at all (`check_events`: no id or person, an unknown type or channel, a timestamp out
of range, a NaN in its properties) is refused with the whole batch, before anything is written: the ledger
and the flows see a batch whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from google.protobuf import json_format, struct_pb2

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import timestamp_violation
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline_orchestrator.contacts.engagement import ENGAGEMENT_KINDS, Engagement
from wayline_orchestrator.contacts.model import ALL
from wayline_orchestrator.contacts.rules import time_zone
from wayline_orchestrator.contacts.store import PREFERRED_CHANNEL, TIME_ZONE, Attribute, ConsentStatement
from wayline_orchestrator.converters import micros
from wayline_orchestrator.errors import ContactInvalid
from wayline_orchestrator.field_checks import struct_violations, text_violation
from wayline_orchestrator.flows.runtime import EventFields, Occurrence
from wayline_orchestrator.merged_persons import ERASED

__all__ = [
    "CONSENT_UPDATED",
    "MAX_EVENTS",
    "PREFERENCE_UPDATED",
    "check_events",
    "engagements",
    "occurrences",
    "person_statements",
    "with_survivors",
]

log = structlog.get_logger("wayline.orchestrator")

CONSENT_UPDATED = "Consent Updated"
PREFERENCE_UPDATED = "Channel Preference Updated"
MAX_EVENTS = 10_000

_CHANNELS = {
    name.removeprefix("CHANNEL_").lower(): name
    for name in event_pb2.Channel.keys()  # noqa: SIM118 - an enum wrapper, not a dict
    if name != "CHANNEL_UNSPECIFIED"
}
# Enum names by number, looked up once (EnumTypeWrapper.Name is Python, per event); `check_events` refuses a
# number this build does not know.
_TYPE_NAMES = {number: name for name, number in event_pb2.EventType.items()}
_CHANNEL_NAMES = {number: name for name, number in event_pb2.Channel.items()}
_PURPOSES = {
    name.removeprefix("CONTACT_PURPOSE_").lower(): name
    for name in policy_pb.ContactPurpose.keys()  # noqa: SIM118
    if name != "CONTACT_PURPOSE_UNSPECIFIED"
}


def _text(properties: struct_pb2.Struct, key: str) -> str:
    value = properties.fields.get(key)
    return value.string_value.strip().lower() if value is not None and value.HasField("string_value") else ""


def _granted(properties: struct_pb2.Struct) -> bool | None:
    value = properties.fields.get("granted")
    if value is None:
        return None
    if value.HasField("bool_value"):
        return value.bool_value
    text = value.string_value.strip().lower() if value.HasField("string_value") else ""
    return {"true": True, "false": False}.get(text)


def _consent(event: event_pb2.Event, at: int) -> ConsentStatement | None:
    channel = _text(event.properties, "channel")
    purpose = _text(event.properties, "purpose")
    granted = _granted(event.properties)
    scope_channel = ALL if channel == "all" else _CHANNELS.get(channel)
    scope_purpose = ALL if purpose == "all" else _PURPOSES.get(purpose)
    if scope_channel is None or scope_purpose is None or granted is None:
        log.warning(
            "contacts.consent_event_unreadable", event_id=event.event_id, channel=channel, purpose=purpose
        )
        return None
    return ConsentStatement(event.person_id, scope_channel, scope_purpose, granted, at, event.event_id)


def _event_violations(i: int, event: event_pb2.Event) -> Iterator[FieldViolation]:
    path = f"events[{i}]"
    for name in ("event_id", "person_id"):
        value = getattr(event, name)
        problem = (
            FieldViolation(f"{path}.{name}", "is required", "REQUIRED")
            if not value
            else text_violation(f"{path}.{name}", value)  # stored in its own column
        )
        if problem is not None:
            yield problem
    # What `occurrences` and `_Source` convert: the enumerations by name, the time in microseconds (a
    # 64-bit column), the properties and context as JSON.
    if event.type not in _TYPE_NAMES:
        yield FieldViolation(
            f"{path}.type", f"{event.type} is not a value of EventType", "UNKNOWN_ENUM_VALUE"
        )
    if event.channel not in _CHANNEL_NAMES:
        yield FieldViolation(
            f"{path}.channel", f"{event.channel} is not a value of Channel", "UNKNOWN_ENUM_VALUE"
        )
    problem = timestamp_violation(event.timestamp, f"{path}.timestamp")
    if problem is not None:
        yield problem
    yield from struct_violations(event.properties, f"{path}.properties")
    if event.HasField("context"):
        yield from struct_violations(event.context.extra, f"{path}.context.extra")
        yield from struct_violations(event.context.traits, f"{path}.context.traits")


def check_events(events: Sequence[event_pb2.Event]) -> None:
    """INVALID_ARGUMENT, with every problem's path, for a batch ObserveEvents cannot take whole (the
    contract's ObserveEvents errors): called before anything is written, so that a refused batch changes
    nothing."""
    problems = [problem for i, event in enumerate(events) for problem in _event_violations(i, event)]
    if len(events) > MAX_EVENTS:
        problems.append(FieldViolation("events", f"at most {MAX_EVENTS} events per call", "TOO_MANY"))
    if problems:
        raise ContactInvalid(problems)


def person_statements(events: Sequence[event_pb2.Event]) -> tuple[list[ConsentStatement], list[Attribute]]:
    """The consent statements and attributes the events carry (checked by `check_events` first)."""
    consents: list[ConsentStatement] = []
    attributes: list[Attribute] = []
    for event in events:
        at = micros(event.timestamp)
        if event.name == CONSENT_UPDATED:
            statement = _consent(event, at)
            if statement is not None:
                consents.append(statement)
        elif event.name == PREFERENCE_UPDATED:
            channel = _CHANNELS.get(_text(event.properties, "channel"))
            if channel is None:
                log.warning("contacts.preference_event_unreadable", event_id=event.event_id)
            else:
                attributes.append(Attribute(event.person_id, PREFERRED_CHANNEL, channel, at, event.event_id))
        zone = event.context.timezone
        if zone and time_zone(zone) is not None:
            attributes.append(Attribute(event.person_id, TIME_ZONE, zone, at, event.event_id))
    return consents, attributes


def engagements(events: Sequence[event_pb2.Event]) -> list[Engagement]:
    """The engagements with ledger contacts the events carry (checked by `check_events` first); an
    engagement event without a `contact_id` is not about a message of ours and is skipped, and so is one
    whose `contact_id` holds NUL (no ledger contact's id does, and PostgreSQL's text cannot hold it)."""
    found: list[Engagement] = []
    for event in events:
        kind = ENGAGEMENT_KINDS.get(event.name)
        if kind is None:  # most events: no properties read
            continue
        value = event.properties.fields.get("contact_id")
        contact_id = value.string_value if value is not None and value.HasField("string_value") else ""
        if contact_id and text_violation("contact_id", contact_id) is None:
            found.append(
                Engagement(
                    event.person_id, contact_id, kind[0], kind[1], micros(event.timestamp), event.event_id
                )
            )
    return found


def occurrences(events: Sequence[event_pb2.Event]) -> list[Occurrence]:
    """The events as the flows' runtime reads them (checked by `check_events` first); each converts its
    properties and context, and apart from them its other event fields, when the runtime first reads them."""
    return [
        Occurrence.converting(
            e.event_id,
            e.person_id,
            e.name,
            micros(e.timestamp),
            _TYPE_NAMES.get(e.type) or event_pb2.EventType.Name(e.type),  # Name: says which is unknown
            _CHANNEL_NAMES.get(e.channel) or event_pb2.Channel.Name(e.channel),
            _Source(e),
        )
        for e in events
    ]


def _revenue(money: event_pb2.Money) -> float:
    # As decision's event converter and journeys' store read it: the stored Decimal(38, 9) as a double
    # (ClickHouse's toFloat64, the scaled integer as a double, then divided), the currency not compared.
    return float(money.units * 1_000_000_000 + money.nanos) / 1e9


class _Source:
    """An Occurrence's EventSource over the Event it was observed as (flows/runtime/occurrence.py)."""

    __slots__ = ("_event",)

    def __init__(self, event: event_pb2.Event) -> None:
        self._event = event

    def json_objects(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            json_format.MessageToDict(self._event.properties),
            json_format.MessageToDict(self._event.context, preserving_proto_field_name=True),
        )

    def fields(self) -> EventFields:
        event = self._event
        return EventFields(
            text=event.text,
            group_id=event.group_id,
            sentiment_score=event.sentiment_score if event.HasField("sentiment_score") else None,
            revenue=_revenue(event.revenue) if event.HasField("revenue") else None,
        )


def with_survivors(events: Sequence[event_pb2.Event], survivors: dict[str, str]) -> list[event_pb2.Event]:
    """The events, those of a merged person as the survivor's (copies), without those of an erased person
    (survivor ERASED: resolved before the erasure, in flight in ingest), the others as they are."""
    if not survivors:
        return list(events)
    moved: list[event_pb2.Event] = []
    for event in events:
        survivor = survivors.get(event.person_id)
        if survivor is None:
            moved.append(event)
            continue
        if survivor == ERASED:
            continue
        copy = event_pb2.Event()
        copy.CopyFrom(event)
        copy.person_id = survivor
        moved.append(copy)
    return moved
