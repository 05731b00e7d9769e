"""GetDecisionEvents, ExportDecisionEvents and CountDecisionOutcomes: requests validated into queries, records
back into messages."""

from __future__ import annotations

from datetime import datetime

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.converters import record_to_event, time_bounds
from wayline_journeys.decisions import DecisionExportQuery, DecisionRecords, OutcomeCount

__all__ = [
    "MAX_EXPORT_BATCH",
    "count_request",
    "counts_response",
    "decision_id_of",
    "decision_message",
    "export_query",
]

DEFAULT_EXPORT_BATCH, MAX_EXPORT_BATCH = 100, 1000


def _range(
    message: event_pb2.TimeRange, violations: list[FieldViolation]
) -> tuple[datetime | None, datetime | None]:
    return time_bounds(message, "time_range", violations)


def decision_id_of(request: pb.GetDecisionEventsRequest) -> str:
    if not request.decision_id:
        raise InvalidArgument(
            "decision_id is required", [FieldViolation("decision_id", "must not be empty", "REQUIRED")]
        )
    return request.decision_id


def export_query(tenant: str, request: pb.ExportDecisionEventsRequest) -> DecisionExportQuery:
    violations: list[FieldViolation] = []
    start, end = _range(request.time_range, violations)
    if not 0 <= request.batch_size <= MAX_EXPORT_BATCH:
        violations.append(
            FieldViolation("batch_size", f"must be between 0 and {MAX_EXPORT_BATCH}", "OUT_OF_RANGE")
        )
    if violations:
        raise InvalidArgument("the export request is invalid; see the field violations", violations)
    return DecisionExportQuery(tenant, start, end, request.model, request.batch_size or DEFAULT_EXPORT_BATCH)


def count_request(request: pb.CountDecisionOutcomesRequest) -> tuple[str, datetime | None, datetime | None]:
    violations: list[FieldViolation] = []
    if not request.model:
        violations.append(FieldViolation("model", "name the model, `models/{model_id}`", "REQUIRED"))
    start, end = _range(request.time_range, violations)
    if violations:
        raise InvalidArgument("the count request is invalid; see the field violations", violations)
    return request.model, start, end


def decision_message(records: DecisionRecords) -> pb.DecisionEvents:
    return pb.DecisionEvents(
        decision_id=records.decision_id, events=[record_to_event(r) for r in records.events]
    )


def counts_response(counts: list[OutcomeCount]) -> pb.CountDecisionOutcomesResponse:
    return pb.CountDecisionOutcomesResponse(
        counts=[
            pb.DecisionOutcomeCount(
                model_version=c.model_version,
                arm=c.arm,
                decisions=c.decisions,
                converted_decisions=c.converted,
            )
            for c in counts
        ]
    )
