"""`Client.send`'s inline path: cut the caller's events into batches that fit, deliver each, and answer as
if it had been one call.

Callers who want the acknowledgement inline think in their own list of events, so indices and field paths
of rejections and warnings are moved from each batch back to positions in that list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from wayline.api.v1 import errors_pb2
from wayline.client.batching import split
from wayline.client.errors import DeliveryError
from wayline.client.transport import Transport
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb

__all__ = ["send_inline"]

_INDEX = re.compile(r"^events\[(\d+)\]")


def send_inline(
    transport: Transport,
    events: Sequence[event_pb2.Event],
    sizes: Sequence[int],
    *,
    max_events: int,
    max_bytes: int,
    backfill: bool,
    deadline: float | None,
) -> ingest_pb.TrackBatchResponse:
    """Deliver `events` in as few calls as fit; one merged response. A batch given up on raises
    DeliveryError naming every event not yet acknowledged (the earlier batches' are durable)."""
    merged = ingest_pb.TrackBatchResponse()
    offset = 0
    for batch in split(events, sizes, max_events=max_events, max_bytes=max_bytes):
        try:
            response = transport.deliver(batch, backfill=backfill, deadline=deadline)
        except DeliveryError as error:
            if offset:
                error.events = tuple(events[offset:])
                error.message += f" (the first {offset} events were acknowledged)"
            raise
        merged.accepted_count += response.accepted_count
        merged.accepted_event_ids.extend(response.accepted_event_ids)
        for rejection in response.rejections:
            merged.rejections.add(
                index=rejection.index + offset,
                event_id=rejection.event_id,
                violations=_shifted(rejection.violations, offset),
            )
        for warning in response.warnings:
            merged.warnings.add(
                index=warning.index + offset,
                event_id=warning.event_id,
                violations=_shifted(warning.violations, offset),
            )
        offset += len(batch)
    return merged


def _shifted(violations: Sequence[errors_pb2.FieldViolation], offset: int) -> list[errors_pb2.FieldViolation]:
    shifted: list[errors_pb2.FieldViolation] = []
    for violation in violations:
        moved = errors_pb2.FieldViolation()
        moved.CopyFrom(violation)
        moved.field = _INDEX.sub(lambda match: f"events[{int(match.group(1)) + offset}]", violation.field)
        shifted.append(moved)
    return shifted
