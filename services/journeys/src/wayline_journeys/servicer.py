"""JourneyService over gRPC: thin — validate and convert, call the store, convert back.

RPCs this service does not implement yet fall through to the generated base class, which the kit answers
with UNIMPLEMENTED and the RPC's name.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from wayline.common.context import require_tenant
from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.converters import (
    event_to_record,
    person_overrides,
    person_to_erase,
    record_to_event,
    timeline_query,
)
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.read_models import ReadModels
from wayline_journeys.store.clickhouse import ClickHouseEventStore, cursor_after
from wayline_journeys.store.overrides import PersonOverrideStore

__all__ = ["JourneyServicer"]


def _ignore(tenant: str) -> None:
    return None


class JourneyServicer(pb_grpc.JourneyServiceServicer):
    def __init__(
        self,
        store: ClickHouseEventStore,
        overrides: PersonOverrideStore,
        changes: PersonChanges,
        max_page_size: int,
        *,
        models: ReadModels,
        note_tenant: Callable[[str], None] = _ignore,
    ) -> None:
        """`note_tenant` is told the tenant of every write (the override-feed follower follows it)."""
        self._models = models
        self._store = store
        self._overrides = overrides
        self._changes = changes
        self._max_page_size = max_page_size
        self._note_tenant = note_tenant

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
        self._note_tenant(tenant)
        written = self._store.write(tenant, [event_to_record(e) for e in request.events])
        return pb.WriteEventsResponse(written_count=written)

    def GetTimeline(  # noqa: N802
        self, request: pb.GetTimelineRequest, context: grpc.ServicerContext
    ) -> pb.GetTimelineResponse:
        query = timeline_query(require_tenant(), request, self._max_page_size)
        records = self._store.timeline(query, self._overrides.mapping_for(query))
        next_token = cursor_after(records[-1]).encode() if len(records) == query.limit else ""
        return pb.GetTimelineResponse(
            events=[record_to_event(r) for r in records], next_page_token=next_token
        )

    def ApplyPersonOverrides(  # noqa: N802
        self, request: pb.ApplyPersonOverridesRequest, context: grpc.ServicerContext
    ) -> pb.ApplyPersonOverridesResponse:
        tenant = require_tenant()
        overrides = person_overrides(request)
        self._note_tenant(tenant)
        applied = self._changes.apply(tenant, overrides)
        return pb.ApplyPersonOverridesResponse(
            applied_count=applied.applied_count, max_version=applied.max_version
        )

    def DeletePersonEvents(  # noqa: N802
        self, request: pb.DeletePersonEventsRequest, context: grpc.ServicerContext
    ) -> pb.DeletePersonEventsResponse:
        tenant, person_id = require_tenant(), person_to_erase(request)
        identifiers = [(i.type, i.value) for i in request.identifiers]
        return pb.DeletePersonEventsResponse(
            deleted_event_count=self._changes.erase(tenant, person_id, identifiers)
        )
