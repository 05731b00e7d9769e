"""Dead letters between the wire (`wayline.ingest.v1`) and the store's domain types, and the few keys the
store reads out of a parked event's bytes.

The only module of the package that touches protobuf messages, so that the store and the model stay plain
Python. Enum values the server does not know (a newer client) are refused with a field violation instead of
being read as "no filter", which would widen a replay or an erasure silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import timestamp_violation, to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import dead_letter_pb2
from wayline_ingest.deadletters.model import (
    DeadLetterFilter,
    DeadLetterRecord,
    DeadLetterState,
    EventKeys,
    InvalidDeadLetterRequest,
)

__all__ = [
    "dead_letter_name",
    "dead_letter_to_proto",
    "event_keys",
    "filter_from_proto",
    "id_from_name",
    "identifiers_from_proto",
]

_NAME = re.compile(r"^deadLetters/([A-Za-z0-9_-]{1,64})$")
_SINK_FROM_WIRE = {
    dead_letter_pb2.SINK_IDENTITY: "identity",
    dead_letter_pb2.SINK_JOURNEYS: "journeys",
    dead_letter_pb2.SINK_DECISION: "decision",
    dead_letter_pb2.SINK_ORCHESTRATOR: "orchestrator",
}
_SINK_TO_WIRE = {name: value for value, name in _SINK_FROM_WIRE.items()}
_STATE_FROM_WIRE = {
    dead_letter_pb2.DEAD_LETTER_STATE_PENDING: DeadLetterState.PENDING,
    dead_letter_pb2.DEAD_LETTER_STATE_REPLAYED: DeadLetterState.REPLAYED,
}
_STATE_TO_WIRE = {state: value for value, state in _STATE_FROM_WIRE.items()}


def event_keys(payload: bytes) -> EventKeys:
    """What the store indexes of a parked event. A payload that does not parse is still kept (a dead letter
    is never dropped), keyed by its digest so that parking it twice updates one row."""
    event = event_pb2.Event()
    try:
        event.ParseFromString(payload)
    except DecodeError:
        return EventKeys(event_id="sha256:" + hashlib.sha256(payload).hexdigest())
    return EventKeys(
        event_id=event.event_id or "sha256:" + hashlib.sha256(payload).hexdigest(),
        name=event.name,
        person_id=event.person_id,
        identifiers=tuple((i.type, i.value) for i in event.identifiers),
    )


def dead_letter_name(dead_letter_id: str) -> str:
    return f"deadLetters/{dead_letter_id}"


def id_from_name(name: str, field: str) -> str:
    """The id in `deadLetters/{id}`; INVALID_ARGUMENT naming `field` otherwise."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise InvalidDeadLetterRequest(
            f"{name!r} is not a dead-letter name",
            [FieldViolation(field, "must be deadLetters/{dead_letter_id}", reason="INVALID_NAME")],
        )
    return match.group(1)


def filter_from_proto(message: dead_letter_pb2.DeadLetterFilter) -> DeadLetterFilter:
    """The domain filter; INVALID_ARGUMENT with `filter.*` field paths for values it cannot honour."""
    sink: str | None = None
    if message.sink != dead_letter_pb2.SINK_UNSPECIFIED:
        if message.sink not in _SINK_FROM_WIRE:
            raise InvalidDeadLetterRequest(
                f"unknown sink {message.sink}", [FieldViolation("filter.sink", "not a known Sink value")]
            )
        sink = _SINK_FROM_WIRE[message.sink]
    state: DeadLetterState | None = None
    if message.state != dead_letter_pb2.DEAD_LETTER_STATE_UNSPECIFIED:
        if message.state not in _STATE_FROM_WIRE:
            raise InvalidDeadLetterRequest(
                f"unknown state {message.state}",
                [FieldViolation("filter.state", "not a known DeadLetterState value")],
            )
        state = _STATE_FROM_WIRE[message.state]
    time_range = message.dead_letter_time_range
    for bound in ("start", "end"):
        violation = timestamp_violation(getattr(time_range, bound), f"filter.dead_letter_time_range.{bound}")
        if violation is not None:
            raise InvalidDeadLetterRequest(f"{violation.field}: {violation.description}", [violation])
    return DeadLetterFilter(
        sink=sink,
        state=state,
        start=to_datetime(time_range.start) if time_range.HasField("start") else None,
        end=to_datetime(time_range.end) if time_range.HasField("end") else None,
        event_name=message.event_name,
        error_code=message.error_code,
        error_reason=message.error_reason,
    )


def identifiers_from_proto(identifiers: Sequence[event_pb2.Identifier]) -> list[tuple[str, str]]:
    """(type, value) pairs; INVALID_ARGUMENT for an identifier missing either part (it would match none)."""
    pairs = []
    for index, identifier in enumerate(identifiers):
        if not identifier.type or not identifier.value:
            raise InvalidDeadLetterRequest(
                "an identifier needs a type and a value",
                [FieldViolation(f"identifiers[{index}]", "type and value are required", reason="REQUIRED")],
            )
        pairs.append((identifier.type, identifier.value))
    return pairs


def dead_letter_to_proto(record: DeadLetterRecord) -> dead_letter_pb2.DeadLetter:
    """The wire dead letter: the parsed event (left empty if the payload does not parse) and its bytes."""
    message = dead_letter_pb2.DeadLetter(
        name=dead_letter_name(record.id),
        sink=_SINK_TO_WIRE.get(record.sink, dead_letter_pb2.SINK_UNSPECIFIED),
        state=_STATE_TO_WIRE[record.state],
        error_code=record.error_code,
        error_reason=record.error_reason,
        error_message=record.error_message,
        error_field=record.error_field,
        attempt_count=min(record.attempt_count, 2**31 - 1),
        replay_count=min(record.replay_count, 2**31 - 1),
        first_attempt_time=to_timestamp(record.first_attempt_time),
        dead_letter_time=to_timestamp(record.dead_letter_time),
        raw_payload=record.payload,
    )
    if record.replay_time is not None:
        message.replay_time.CopyFrom(to_timestamp(record.replay_time))
    try:
        message.event.ParseFromString(record.payload)
    except DecodeError:
        message.ClearField("event")
    return message
