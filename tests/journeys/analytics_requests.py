"""The request fields the analytics references' queries share: a time range and a breakdown named as the
references name it ('' for none, 'channel', a property path, or 'segment' with the segments' names). Set on
the request's own sub-messages, so an unused field stays unset, as a caller would leave it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf import struct_pb2

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2

__all__ = ["set_breakdown", "set_plan_population", "set_time_range"]


def set_time_range(found: event_pb2.TimeRange, start: datetime | None, end: datetime | None) -> None:
    if start:
        found.start.CopyFrom(to_timestamp(start))
    if end:
        found.end.CopyFrom(to_timestamp(end))


def set_breakdown(
    found: analytics_pb2.Breakdown, breakdown: str, limit: int, segments: Sequence[str] = ()
) -> None:
    if breakdown == "channel":
        found.dimension = analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL
    elif breakdown == "segment":
        found.dimension = analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT
        found.segments.extend(segments)
    elif breakdown:
        found.dimension = analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY
        found.property = breakdown
    if breakdown:
        found.limit = limit


def set_plan_population(found: analytics_pb2.Population, plan: str) -> None:
    """The persons whose `person.plan` is `plan` (the references' population); nothing for ''."""
    if plan:
        found.person_filters.add(
            property="person.plan",
            operator=analytics_pb2.FILTER_OPERATOR_EQUALS,
            values=[struct_pb2.Value(string_value=plan)],
        )
