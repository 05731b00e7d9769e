"""Helpers of the segment tests: conditions, events stamped now, and waiting for the evaluator with a
deadline until an answer states the freshness a test needs."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import grpc

from tests.journeys.conftest import Journeys
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

__all__ = [
    "assert_segments_overlap",
    "built_members",
    "built_segments",
    "count",
    "delete_all_segments",
    "event",
    "get",
    "member_of",
    "members_fresh_after",
    "memberships",
    "wait_ready",
]

Comparison: TypeAlias = condition_pb2.ComparisonOperator.ValueType
DEADLINE_SECONDS = 30.0  # generous: the box is shared; a pass takes ~0.2 s when idle


def count(
    name: str,
    at_least: int = 1,
    window: timedelta | None = None,
    comparison: Comparison = condition_pb2.COMPARISON_OPERATOR_UNSPECIFIED,
) -> condition_pb2.PersonCondition:
    """`name` performed `at_least` times (in the trailing window); `comparison` unset means at least."""
    found = condition_pb2.PersonCondition(
        event_count=condition_pb2.EventCountCondition(
            event=analytics_pb2.EventMatcher(event_name=name), comparison=comparison, count=at_least
        )
    )
    if window is not None:
        found.event_count.window.FromTimedelta(window)
    return found


def member_of(name: str) -> condition_pb2.PersonCondition:
    return condition_pb2.PersonCondition(
        segment_membership=condition_pb2.SegmentMembershipCondition(segment=name)
    )


def event(
    person: str,
    name: str,
    at: datetime | None = None,
    revenue: str = "",
    identifier: tuple[str, str] = ("", ""),
) -> event_pb2.Event:
    """A track event of `person` (stored under that id), at `at` (now by default), carrying `identifier`
    (the person's user id by default) and `revenue` in EUR when given."""
    moment = to_timestamp(at or datetime.now(UTC))
    found = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=moment,
        received_at=moment,
        identifiers=[
            event_pb2.Identifier(type=identifier[0] or "user_id", value=identifier[1] or f"u-{person}")
        ],
        person_id=person,
    )
    if revenue:
        units, _, nanos = revenue.partition(".")
        found.revenue.CopyFrom(
            event_pb2.Money(currency_code="EUR", units=int(units), nanos=int((nanos or "0").ljust(9, "0")))
        )
    return found


def get(journeys: Journeys, name: str) -> segment_pb2.Segment:
    response: pb.GetSegmentResponse = journeys.stub.GetSegment(
        pb.GetSegmentRequest(name=name), metadata=journeys.metadata, timeout=10
    )
    return response.segment


def memberships(journeys: Journeys, person_id: str) -> pb.GetSegmentMembershipsResponse:
    request = pb.GetSegmentMembershipsRequest(person=event_pb2.PersonRef(person_id=person_id))
    response: pb.GetSegmentMembershipsResponse = journeys.stub.GetSegmentMemberships(
        request, metadata=journeys.metadata, timeout=10
    )
    return response


def wait_ready(journeys: Journeys, name: str) -> segment_pb2.Segment:
    """The segment once built (SEGMENT_STATE_READY)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        segment = get(journeys, name)
        if segment.status.state == segment_pb2.SEGMENT_STATE_READY:
            return segment
        assert segment.status.state != segment_pb2.SEGMENT_STATE_FAILED, segment.status.error_message
        assert time.monotonic() < deadline, f"{name} was not built in {DEADLINE_SECONDS} s"
        time.sleep(0.1)


def built_members(journeys: Journeys, segment_id: str) -> set[str]:
    """The members of `segments/{segment_id}` once it is built."""
    name = f"segments/{segment_id}"
    wait_ready(journeys, name)
    return set(journeys.segment_members(name)[0])


def built_segments(
    journeys: Journeys, *definitions: tuple[str, condition_pb2.PersonCondition]
) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each (segment id, condition) created, and its name with its members once built."""
    for segment_id, condition in definitions:
        journeys.create_segment(condition, segment_id)
    return tuple((f"segments/{i}", frozenset(built_members(journeys, i))) for i, _ in definitions)


def assert_segments_overlap(segments: tuple[tuple[str, frozenset[str]], ...], persons: set[str]) -> None:
    """The first two segments share persons without being equal, and some of `persons` are in neither: what a
    breakdown by segment must meet to be tested."""
    first, second = segments[0][1], segments[1][1]
    assert first & second, segments
    assert first != second, segments
    assert persons - first - second, segments


def members_fresh_after(
    journeys: Journeys, name: str, moment: datetime, windows: bool = False
) -> tuple[list[str], pb.ListSegmentMembersResponse]:
    """The members from the first answer whose stated freshness (`data_as_of`, or `windows_as_of` when
    `windows`) is after `moment`."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        members, response = journeys.segment_members(name)
        stated = response.status.windows_as_of if windows else response.status.data_as_of
        if response.status.HasField("data_as_of") and to_datetime(stated) > moment:
            return members, response
        assert time.monotonic() < deadline, (
            f"{name} stated no freshness after {moment} in {DEADLINE_SECONDS} s"
        )
        time.sleep(0.05)


def delete_all_segments(journeys: Journeys) -> None:
    """Delete the tenant's segments (those referred to after those referring to them), so that the session's
    evaluator stops evaluating them for the tests that follow."""
    for _ in range(10):
        listed: pb.ListSegmentsResponse = journeys.stub.ListSegments(
            pb.ListSegmentsRequest(page_size=1_000), metadata=journeys.metadata, timeout=10
        )
        if not listed.segments:
            return
        for segment in listed.segments:
            try:
                journeys.stub.DeleteSegment(
                    pb.DeleteSegmentRequest(name=segment.name), metadata=journeys.metadata, timeout=10
                )
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:  # in use: deleted in a later round
                    raise
