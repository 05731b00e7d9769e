"""The segment feed over gRPC: JourneyService.ListSegmentMembershipChanges and ListSegmentMembers on the
journeys peer's channel, for the tenant in metadata. Status codes become the feed's exceptions:
FAILED_PRECONDITION `CURSOR_EXPIRED` CursorExpired, NOT_FOUND SegmentMissing, anything else FeedUnavailable
(retried after a backoff by the caller)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2

from wayline.common.context import TENANT_HEADER
from wayline.common.errors import status_details
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline.journeys.v1 import segment_pb2
from wayline_orchestrator.flows.runtime.segment_feed import (
    CursorExpired,
    FeedUnavailable,
    MembershipChange,
    SegmentMissing,
)

__all__ = ["JourneysSegmentFeed"]


def _reason(error: grpc.RpcError) -> str:
    return next((d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)), "")


def _translated(error: grpc.RpcError, segment: str) -> Exception:
    code = error.code()
    if code is grpc.StatusCode.FAILED_PRECONDITION and _reason(error) == "CURSOR_EXPIRED":
        return CursorExpired(segment)
    if code is grpc.StatusCode.NOT_FOUND:
        return SegmentMissing(segment)
    return FeedUnavailable(f"journeys answered {code}: {error.details()}")


class JourneysSegmentFeed:
    """Calls journeys on `channel` (owned by the peers, not closed here), each call within `timeout_s`."""

    def __init__(self, channel: grpc.Channel, timeout_s: float = 10.0) -> None:
        self._stub = pb_grpc.JourneyServiceStub(channel)
        self._timeout = timeout_s

    def changes(
        self, tenant: str, segment: str, after_sequence: int, limit: int
    ) -> tuple[Sequence[MembershipChange], bool]:
        request = pb.ListSegmentMembershipChangesRequest(
            after_sequence=after_sequence, segment=segment, page_size=limit
        )
        try:
            response: pb.ListSegmentMembershipChangesResponse = self._stub.ListSegmentMembershipChanges(
                request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
            )
        except grpc.RpcError as error:
            raise _translated(error, segment) from error
        changes = [
            MembershipChange(
                sequence=c.sequence,
                segment=c.segment,
                person_id=c.person_id,
                entered=c.change_type == segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_ENTERED,
                time=c.change_time.ToMicroseconds(),
            )
            for c in response.changes
        ]
        return changes, bool(response.next_page_token)

    def members(self, tenant: str, segment: str, page_token: str, limit: int) -> tuple[Sequence[str], str]:
        request = pb.ListSegmentMembersRequest(segment=segment, page_size=limit, page_token=page_token)
        try:
            response: pb.ListSegmentMembersResponse = self._stub.ListSegmentMembers(
                request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
            )
        except grpc.RpcError as error:
            raise _translated(error, segment) from error
        return [m.person_id for m in response.members], response.next_page_token
