"""GetDecision and ExportDecisions: traces from the journey store, merged with what this process recorded
recently and the store may not have yet (recent.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import timestamp_violation
from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_decision.errors import DecisionNotFound, DownstreamUnavailable
from wayline_decision.packages import MODEL_ID_PATTERN
from wayline_decision.traces.clients import JourneysDecisions, PersonIdentifiers
from wayline_decision.traces.events import decision_of
from wayline_decision.traces.recent import RecentTraces

__all__ = ["MAX_EXPORT_BATCH", "DecisionTraces", "ExportSelection", "export_selection", "merged_feedback"]

MAX_EXPORT_BATCH = 1000
MAX_DECISION_ID = 256


def merged_feedback(
    *sources: Iterable[decision_pb2.FeedbackRecord],
) -> list[decision_pb2.FeedbackRecord]:
    """Feedback from several sources, once per feedback id (the later source wins), oldest first."""
    by_id: dict[str, decision_pb2.FeedbackRecord] = {}
    for source in sources:
        for record in source:
            by_id[record.feedback_id] = record
    return sorted(by_id.values(), key=lambda r: (r.time.ToNanoseconds(), r.feedback_id))


@dataclass(frozen=True)
class ExportSelection:
    time_range: event_pb2.TimeRange
    model: str
    batch_size: int


def export_selection(time_range: event_pb2.TimeRange, model: str, batch_size: int) -> ExportSelection:
    """The checked selection of an ExportDecisions request; InvalidArgument naming each bad field."""
    violations = [
        violation
        for bound in ("start", "end")
        if time_range.HasField(bound)
        and (violation := timestamp_violation(getattr(time_range, bound), f"time_range.{bound}")) is not None
    ]
    if (
        not violations
        and time_range.HasField("start")
        and time_range.HasField("end")
        # To the microsecond, as the journey store keeps times: bounds apart by less are one instant there.
        and time_range.start.ToMicroseconds() >= time_range.end.ToMicroseconds()
    ):
        violations.append(
            FieldViolation(
                "time_range", "start must be before end (times are kept to the microsecond)", "INVALID_RANGE"
            )
        )
    if model and not (model.startswith("models/") and MODEL_ID_PATTERN.fullmatch(model[len("models/") :])):
        violations.append(FieldViolation("model", "must be `models/{model_id}` (or empty for every model)"))
    if not 0 <= batch_size <= MAX_EXPORT_BATCH:
        violations.append(
            FieldViolation("batch_size", f"must be between 0 and {MAX_EXPORT_BATCH}", "OUT_OF_RANGE")
        )
    if violations:
        raise InvalidArgument("the export request is invalid; see the field violations", violations)
    return ExportSelection(time_range, model, batch_size or 100)


def check_decision_id(decision_id: str) -> None:
    if not decision_id or len(decision_id) > MAX_DECISION_ID:
        raise InvalidArgument(
            "decision_id is required (the id Decide returned)",
            [FieldViolation("decision_id", f"1 to {MAX_DECISION_ID} characters", "REQUIRED")],
        )


class DecisionTraces:
    """A decision of a person known to be erased (identity's override feed, forgetting.py) is not found,
    even while the journey store still holds it (its own erasure may not have run yet)."""

    def __init__(self, journeys: JourneysDecisions, recent: RecentTraces, people: PersonIdentifiers) -> None:
        self._journeys = journeys
        self._recent = recent
        self._people = people

    def get(self, tenant: str, decision_id: str) -> decision_pb2.Decision:
        """The trace with every feedback known; DecisionNotFound when neither the store nor this process
        knows it, or its person was erased; DownstreamUnavailable when the store is down and this process
        does not hold it."""
        check_decision_id(decision_id)
        recent, recent_feedback = self._recent.get(tenant, decision_id)
        try:
            stored = decision_of(self._journeys.events(tenant, decision_id))
        except DownstreamUnavailable:
            if recent is None:
                raise
            stored = None  # the store is down, but the trace is here: answer from it
        trace = stored or recent
        if trace is None or self._people.erased(tenant, trace.person_id):
            raise DecisionNotFound(decision_id)
        found = decision_pb2.Decision()
        found.CopyFrom(trace)
        found.ClearField("feedback")
        found.feedback.extend(merged_feedback(trace.feedback, recent_feedback))
        return found

    def export(
        self, tenant: str, selection: ExportSelection, timeout: float | None
    ) -> Iterator[list[decision_pb2.Decision]]:
        request = journeys_pb.ExportDecisionEventsRequest(
            time_range=selection.time_range, model=selection.model, batch_size=selection.batch_size
        )
        for page in self._journeys.export(tenant, request, timeout):
            traces = [decision_of(list(decision.events)) for decision in page]
            decoded = [trace for trace in traces if trace is not None]
            kept = [trace for trace in decoded if not self._people.erased(tenant, trace.person_id)]
            if kept or not decoded:  # a page only of erased persons' decisions is not sent
                yield kept
