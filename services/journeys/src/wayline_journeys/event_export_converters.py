"""ExportEvents: the request validated into an EventExportQuery (every bad field reported at once, with its
path from the request's root), and a chunk of records into a response."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.response_size import fitting
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.converters import record_to_event, time_bounds
from wayline_journeys.event_export import EventExportQuery
from wayline_journeys.events import EventRecord

__all__ = ["event_export_query", "event_export_responses"]


def event_export_query(tenant: str, request: pb.ExportEventsRequest) -> EventExportQuery:
    violations: list[FieldViolation] = []
    window = request.time_range
    for bound in ("start", "end"):
        if not window.HasField(bound):
            violations.append(FieldViolation(f"time_range.{bound}", f"set the range's {bound}", "REQUIRED"))
    start, end = time_bounds(window, "time_range", violations)
    if request.max_persons < 0:
        violations.append(FieldViolation("max_persons", "must not be negative", "OUT_OF_RANGE"))
    violations += [
        FieldViolation(f"event_names[{i}]", "must not be empty", "REQUIRED")
        for i, name in enumerate(request.event_names)
        if not name
    ]
    if violations or start is None or end is None:  # both bounds are required: unset is a violation
        raise InvalidArgument("the export request is invalid; see the field violations", violations)
    return EventExportQuery(tenant, start, end, request.max_persons, tuple(request.event_names))


def event_export_responses(records: Sequence[EventRecord]) -> Iterator[pb.ExportEventsResponse]:
    """A chunk of records as messages of the stream: one, unless its events pass what a response holds."""
    events = [record_to_event(r) for r in records]
    while events:
        kept = fitting(events)
        yield pb.ExportEventsResponse(events=events[:kept])
        events = events[kept:]
