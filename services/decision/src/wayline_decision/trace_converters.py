"""Feedback, GetDecision, ListDecisions and ExportDecisions requests ⇄ the traces' types."""

from __future__ import annotations

from wayline.common.timestamps import timestamp_violation
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline_decision.errors import FeedbackInvalid
from wayline_decision.traces.feedback import FeedbackInput
from wayline_decision.traces.listing import DecisionPage, ListSelection, list_selection
from wayline_decision.traces.reads import ExportSelection, export_selection

__all__ = ["export_request", "feedback_input", "list_decisions_request", "list_decisions_response"]


def feedback_input(request: pb.FeedbackRequest) -> FeedbackInput:
    if request.HasField("time"):
        # The wire carries any int64 seconds; ToMicroseconds raises ValueError (INTERNAL) for what no
        # Timestamp holds.
        invalid = timestamp_violation(request.time, "time")
        if invalid is not None:
            raise FeedbackInvalid([invalid])
    return FeedbackInput(
        decision_id=request.decision_id,
        action_id=request.action_id,
        outcome=request.outcome,
        value=request.value if request.HasField("value") else None,
        time_us=request.time.ToMicroseconds() if request.HasField("time") else None,
        feedback_id=request.feedback_id,
        properties=request.properties if request.HasField("properties") else None,
    )


def export_request(request: pb.ExportDecisionsRequest) -> ExportSelection:
    return export_selection(request.time_range, request.model, request.batch_size)


def list_decisions_request(request: pb.ListDecisionsRequest) -> ListSelection:
    person = request.person if request.HasField("person") else None
    return list_selection(person, request.page_size, request.page_token)


def list_decisions_response(page: DecisionPage) -> pb.ListDecisionsResponse:
    return pb.ListDecisionsResponse(
        decisions=page.decisions, next_page_token=page.next_page_token, person_id=page.person_id
    )
