"""IngestService over gRPC: a thin adapter. Requests go to the pipeline (pipeline.py), which checks them
and makes them durable in the spool; tracking plans and dead letters have their own RPC classes.

The pipeline is looked up per call (`pipeline()`), because the spool opens (and recovers) in the
background after the port is open; until then the kit answers UNAVAILABLE.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc

from wayline.common.context import require_tenant
from wayline.common.errors import InvalidArgument
from wayline.common.quotas import EVENT_PACING_HEADER, EventPacer, parse_event_pacing
from wayline.common.timestamps import to_timestamp
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from wayline_ingest import wire
from wayline_ingest.batches import BatchLimits, batch_path, field_violations, rejections, warnings
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.streaming import EventStream, StreamPacing

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
        *,
        draining: threading.Event | None = None,
        pacer: EventPacer | None = None,
    ) -> None:
        """`draining` is set when the process begins to shut down: open streams end then (streaming.py).
        `pacer` holds the buckets of the quotas that streams' event-pacing headers name (ADR 106)."""
        self._pipeline = pipeline
        self._pacer = pacer or EventPacer()
        self._limits = limits
        self._stream_window = stream_window
        self._plans = tracking_plans
        self._dead_letters = dead_letters
        self._draining = draining or threading.Event()

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

    # TrackBatch and StreamEvents receive bytes, not messages: add_to_server registers them so.
    def TrackBatch(  # type: ignore[override]  # noqa: N802
        self, request: bytes, context: grpc.ServicerContext
    ) -> pb.TrackBatchResponse:
        tenant = require_tenant()
        batch = wire.read_track_batch(request)
        self._limits.check(len(batch.events), batch.size)
        pipeline = self._pipeline()
        checked = pipeline.check_wire(tenant, batch.events, batch_path, batch.backfill)
        outcome = pipeline.settle(checked, timeout=remaining(context))
        return pb.TrackBatchResponse(
            accepted_count=len(outcome.accepted_ids),
            accepted_event_ids=outcome.accepted_ids,
            rejections=rejections(outcome.rejections),
            warnings=warnings(outcome.warnings),
        )

    def StreamEvents(  # type: ignore[override]  # noqa: N802
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[pb.StreamEventsResponse]:
        stream = EventStream(
            require_tenant(),
            self._pipeline(),
            self._limits,
            self._stream_window,
            context,
            draining=self._draining,
            pacing=self._pacing(context),
        )
        return stream.run(request_iterator)

    def _pacing(self, context: grpc.ServicerContext) -> StreamPacing | None:
        """The stream's events paced to the quotas its event-pacing header names (set by the gateway's data
        plane, which passes the stream here without reading it); None without the header."""
        value = next((v for k, v in context.invocation_metadata() if k == EVENT_PACING_HEADER), None)
        if value is None:
            return None
        try:
            pacing = parse_event_pacing(str(value))
        except ValueError as error:
            raise InvalidArgument(
                f"the {EVENT_PACING_HEADER} header cannot be read: {error}", reason="BAD_EVENT_PACING"
            ) from None
        self._pacer.open(pacing)
        return StreamPacing(self._pacer, pacing)

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


def add_to_server(servicer: IngestServicer, server: grpc.Server) -> None:
    """Register IngestService. TrackBatch and StreamEvents take their requests as bytes, which the C fast
    path reads without building a message per event (wire.py)."""
    # The stand-in has the two methods the generated code calls on a server.
    stand_in = cast(grpc.Server, _BytesRequests(server, _BYTES_METHODS))
    pb_grpc.add_IngestServiceServicer_to_server(servicer, stand_in)


_BYTES_METHODS = frozenset({"TrackBatch", "StreamEvents"})


class _BytesRequests:
    """Stands in for the server while the generated code registers the service, and registers its handlers
    with no request deserializer for `methods`."""

    def __init__(self, server: grpc.Server, methods: frozenset[str]) -> None:
        self._server = server
        self._methods = methods

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: `add_registered_method_handlers`, called next with the handlers themselves, adds both."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        rewritten = {name: self._raw(h) if name in self._methods else h for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, rewritten),))
        self._server.add_registered_method_handlers(service, rewritten)  # type: ignore[attr-defined]

    @staticmethod
    def _raw(handler: Any) -> Any:
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                handler.stream_stream, response_serializer=handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            handler.unary_unary, response_serializer=handler.response_serializer
        )


def remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds until the caller's deadline: how long the spool write may be waited for."""
    left = context.time_remaining()
    return None if left is None else max(left, 0.001)
