"""ObserveEvents' request checks: every event names its event and its person (identity resolved it), at most
MAX_OBSERVED_EVENTS per call; every bad event is reported at once (INVALID_ARGUMENT with BadRequest
violations), and nothing of a refused request is consumed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import timestamp_violation
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2

__all__ = ["MAX_OBSERVED_EVENTS", "observed_events"]

MAX_OBSERVED_EVENTS = 10_000
_MAX_REPORTED = 100
_TIMES: tuple[Literal["timestamp", "received_at", "sent_at", "original_timestamp"], ...] = (
    "timestamp",
    "received_at",
    "sent_at",
    "original_timestamp",
)
_TYPES = frozenset(event_pb2.EventType.values())
_CHANNELS = frozenset(event_pb2.Channel.values())


def _field_violations(event: event_pb2.Event, path: str) -> Iterator[FieldViolation]:
    """The times and enums of `event` that are not valid: the online state keeps times in microseconds,
    and a time past year 9999 (any int64 seconds cross the wire) would be consumed, then overflow where the
    state converts it back; an enum number the contract does not define would be kept as no type or
    channel, matching no filter, where the store refuses the same event."""
    for name in _TIMES:
        if event.HasField(name):
            bad = timestamp_violation(getattr(event, name), f"{path}.{name}")
            if bad is not None:
                yield bad
    if event.type not in _TYPES:
        yield FieldViolation(f"{path}.type", f"{event.type} is not an EventType")
    if event.channel not in _CHANNELS:
        yield FieldViolation(f"{path}.channel", f"{event.channel} is not a Channel")


def observed_events(request: pb.ObserveEventsRequest) -> list[event_pb2.Event]:
    events = request.events
    if len(events) > MAX_OBSERVED_EVENTS:
        raise InvalidArgument(
            f"ObserveEvents takes at most {MAX_OBSERVED_EVENTS:,} events per call; got {len(events):,}: "
            "split the batch",
            [FieldViolation("events", f"at most {MAX_OBSERVED_EVENTS:,} events", "TOO_MANY")],
        )
    violations: list[FieldViolation] = []
    for i, event in enumerate(events):
        if not event.event_id:
            violations.append(
                FieldViolation(f"events[{i}].event_id", "required (ingest assigns one)", "REQUIRED")
            )
        if not event.person_id:
            violations.append(
                FieldViolation(
                    f"events[{i}].person_id", "required: resolve the event through identity first", "REQUIRED"
                )
            )
        if not event.HasField("timestamp") or not event.HasField("received_at"):
            violations.append(
                FieldViolation(
                    f"events[{i}]", "timestamp and received_at are required (ingest sets both)", "REQUIRED"
                )
            )
        violations.extend(_field_violations(event, f"events[{i}]"))
    if violations:
        shown = violations[:_MAX_REPORTED]
        raise InvalidArgument(
            f"{len(violations)} problem(s) in ObserveEvents' events; nothing was consumed", shown
        )
    return list(events)
