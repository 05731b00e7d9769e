"""IngestService over gRPC: a thin adapter. Requests go to the pipeline (pipeline.py), which checks them
and makes them durable in the spool; tracking plans and dead letters have their own RPC classes.

The pipeline is looked up per call (`pipeline()`), because the spool opens (and recovers) in the
background after the port is open; until then the kit answers UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from wayline.common.context import require_tenant
from wayline.common.errors import InvalidArgument
from wayline.common.timestamps import to_timestamp
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from wayline_ingest.batches import BatchLimits, batch_path, field_violations, rejections, warnings
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.streaming import EventStream

__all__ = ["IngestServicer"]


def _event_path(_: int) -> str:
    return "event"


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(
        self,
        pipeline: Callable[[], Pipeline],
        limits: BatchLimits,
        stream_window: int,
        tracking_plans: Any = None,
        dead_letters: Any = None,
    ) -> None:
        self._pipeline = pipeline
        self._limits = limits
        self._stream_window = stream_window
        self._plans = tracking_plans
        self._dead_letters = dead_letters

    def Track(self, request: pb.TrackRequest, context: grpc.ServicerContext) -> pb.TrackResponse:  # noqa: N802
        tenant = require_tenant()
        outcome = self._pipeline().accept(tenant, [request.event], _event_path, timeout=remaining(context))
        if outcome.rejections:
            raise InvalidArgument(
                "the event was rejected; see the field violations", outcome.rejections[0].violations
            )
        return pb.TrackResponse(
            event_id=outcome.accepted_ids[0],
            received_at=to_timestamp(outcome.received_at),
            warnings=field_violations(outcome.warnings[0]) if outcome.warnings else [],
        )

    def TrackBatch(  # noqa: N802
        self, request: pb.TrackBatchRequest, context: grpc.ServicerContext
    ) -> pb.TrackBatchResponse:
        tenant = require_tenant()
        self._limits.check(len(request.events), request.ByteSize())
        outcome = self._pipeline().accept(
            tenant, request.events, batch_path, backfill=request.backfill, timeout=remaining(context)
        )
        return pb.TrackBatchResponse(
            accepted_count=len(outcome.accepted_ids),
            accepted_event_ids=outcome.accepted_ids,
            rejections=rejections(outcome.rejections),
            warnings=warnings(outcome.warnings),
        )

    def StreamEvents(  # noqa: N802
        self, request_iterator: Iterator[pb.StreamEventsRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.StreamEventsResponse]:
        stream = EventStream(require_tenant(), self._pipeline(), self._limits, self._stream_window, context)
        return stream.run(request_iterator)

    # Tracking plans and dead letters: their own RPC classes do the work.

    def CreateTrackingPlan(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._plans.CreateTrackingPlan(request, context)

    def GetTrackingPlan(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._plans.GetTrackingPlan(request, context)

    def ListTrackingPlans(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._plans.ListTrackingPlans(request, context)

    def UpdateTrackingPlan(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._plans.UpdateTrackingPlan(request, context)

    def ListDeadLetters(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._dead_letters.ListDeadLetters(request, context)

    def ReplayDeadLetters(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._dead_letters.ReplayDeadLetters(request, context)

    def DeletePersonDeadLetters(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._dead_letters.DeletePersonDeadLetters(request, context)


def remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds until the caller's deadline: how long the spool write may be waited for."""
    left = context.time_remaining()
    return None if left is None else max(left, 0.001)
