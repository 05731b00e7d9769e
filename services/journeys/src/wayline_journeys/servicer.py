"""JourneyService over gRPC: thin — validate and convert, call the store, convert back.

RPCs this service does not implement yet fall through to the generated base class, which the kit answers
with UNIMPLEMENTED and the RPC's name.
"""

from __future__ import annotations

import grpc

from wayline.common.context import require_tenant
from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.converters import event_to_record, record_to_event, timeline_query
from wayline_journeys.store.clickhouse import ClickHouseEventStore, cursor_after

__all__ = ["JourneyServicer"]


class JourneyServicer(pb_grpc.JourneyServiceServicer):
    def __init__(self, store: ClickHouseEventStore, max_page_size: int) -> None:
        self._store = store
        self._max_page_size = max_page_size

    def WriteEvents(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.WriteEventsRequest, context: grpc.ServicerContext
    ) -> pb.WriteEventsResponse:
        tenant = require_tenant()
        missing = [
            FieldViolation(f"events[{i}].{field}", f"every stored event needs its {field}", "REQUIRED")
            for i, event in enumerate(request.events)
            for field in ("event_id", "timestamp")
            if not (event.event_id if field == "event_id" else event.HasField("timestamp"))
        ]
        if missing:
            raise InvalidArgument("every event needs event_id and timestamp; nothing was stored", missing)
        written = self._store.write(tenant, [event_to_record(e) for e in request.events])
        return pb.WriteEventsResponse(written_count=written)

    def GetTimeline(  # noqa: N802
        self, request: pb.GetTimelineRequest, context: grpc.ServicerContext
    ) -> pb.GetTimelineResponse:
        query = timeline_query(require_tenant(), request, self._max_page_size)
        records = self._store.timeline(query)
        next_token = cursor_after(records[-1]).encode() if len(records) == query.limit else ""
        return pb.GetTimelineResponse(
            events=[record_to_event(r) for r in records], next_page_token=next_token
        )
