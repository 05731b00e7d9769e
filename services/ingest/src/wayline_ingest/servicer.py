"""IngestService over gRPC: validate and enrich at the door, then hand accepted events to journeys.

An event is acknowledged only after journeys has stored it; when journeys cannot be reached nothing is
acknowledged and the caller gets UNAVAILABLE with a retry delay. Retrying the same events is safe, because
journeys deduplicates by event_id. (The durable spool that decouples the two comes with the ingest issue.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import grpc

from wayline.api.v1 import errors_pb2
from wayline.common.context import require_tenant
from wayline.common.errors import FieldViolation, InvalidArgument, Unavailable, WaylineError
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_ingest.validation import EventLimits, enrich, validate_event

__all__ = ["IngestServicer"]

_RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(
        self,
        journeys: journeys_grpc.JourneyServiceStub,
        limits: EventLimits,
        max_batch_events: int,
        max_write_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._journeys = journeys
        self._limits = limits
        self._max_batch_events = max_batch_events
        self._max_write_bytes = max_write_bytes
        self._clock = clock

    def Track(self, request: pb.TrackRequest, context: grpc.ServicerContext) -> pb.TrackResponse:  # noqa: N802
        require_tenant()
        event = event_pb2.Event()
        event.CopyFrom(request.event)
        violations = self._check(event, "event")
        if violations:
            raise InvalidArgument("the event was rejected; see the field violations", violations)
        self._store([event])
        return pb.TrackResponse(event_id=event.event_id, received_at=event.received_at)

    def TrackBatch(  # noqa: N802
        self, request: pb.TrackBatchRequest, context: grpc.ServicerContext
    ) -> pb.TrackBatchResponse:
        require_tenant()
        if not request.events:
            raise InvalidArgument(
                "the batch is empty", [FieldViolation("events", "send at least one event", "REQUIRED")]
            )
        if len(request.events) > self._max_batch_events:
            raise InvalidArgument(
                f"the batch holds {len(request.events)} events; split it into batches of at most "
                f"{self._max_batch_events}",
                [FieldViolation("events", f"at most {self._max_batch_events} events per batch", "TOO_MANY")],
            )
        accepted: list[event_pb2.Event] = []
        rejections: list[pb.EventRejection] = []
        for index, incoming in enumerate(request.events):
            event = event_pb2.Event()
            event.CopyFrom(incoming)
            violations = self._check(event, f"events[{index}]")
            if violations:
                rejections.append(
                    pb.EventRejection(
                        index=index,
                        event_id=incoming.event_id,
                        violations=[
                            errors_pb2.FieldViolation(
                                field=v.field, description=v.description, reason=v.reason
                            )
                            for v in violations
                        ],
                    )
                )
            else:
                accepted.append(event)
        if accepted:
            self._store(accepted)
        return pb.TrackBatchResponse(
            accepted_count=len(accepted),
            accepted_event_ids=[e.event_id for e in accepted],
            rejections=rejections,
        )

    def _check(self, event: event_pb2.Event, path: str) -> list[FieldViolation]:
        violations = validate_event(event, path, self._limits)
        if not violations:
            violations = enrich(event, path, self._clock(), self._limits)
        return violations

    def _store(self, events: Sequence[event_pb2.Event]) -> None:
        """Write `events` in calls of at most max_write_bytes, so no batch outgrows a gRPC message. If a
        later call fails after an earlier one succeeded, the caller's retry rewrites the stored ones,
        which journeys deduplicates by event_id."""
        for chunk in _chunks(events, self._max_write_bytes):
            self._write(chunk)

    def _write(self, events: Sequence[event_pb2.Event]) -> None:
        try:
            self._journeys.WriteEvents(journeys_pb.WriteEventsRequest(events=events))
        except grpc.RpcError as error:
            if error.code() in _RETRYABLE:
                raise Unavailable(
                    "the journey store is unavailable, so no event was accepted; retry the same events "
                    "(their event_ids make the retry safe)",
                    retry_after=1.0,
                ) from error
            raise WaylineError(f"the journey store refused the events ({error.code().name})") from error


def _chunks(events: Sequence[event_pb2.Event], max_bytes: int) -> list[list[event_pb2.Event]]:
    """Consecutive runs of `events` whose serialised size stays under `max_bytes` (one event at least)."""
    chunks: list[list[event_pb2.Event]] = [[]]
    size = 0
    for event in events:
        event_size = event.ByteSize() + 8  # field tag and length prefix, generously
        if chunks[-1] and size + event_size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(event)
        size += event_size
    return chunks
