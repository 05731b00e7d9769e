"""Feedback: an outcome of a decision, checked against its trace, stored as a `Decision Feedback` event
through ingest (with the decision's logged propensity, model version and arm), and, for an impression of a
contact candidate, recorded in the contact ledger. Idempotent by feedback id: the event id derives from it,
the ledger's contact id is `{decision_id}/{action_id}`. A decision of a person erased since is not found
(DECISION_NOT_FOUND): nothing is written for them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import struct_pb2, timestamp_pb2

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import now_us
from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline_decision.errors import DecisionNotFound, FeedbackInvalid, PersonUnknown, UnknownFeedbackAction
from wayline_decision.traces.clients import ContactLedger, EventWriter, PersonIdentifiers
from wayline_decision.traces.events import feedback_event
from wayline_decision.traces.reads import DecisionTraces, check_decision_id
from wayline_decision.traces.recent import RecentTraces

__all__ = ["FeedbackInput", "FeedbackRecorder"]

_CURRENCY = re.compile(r"[A-Z]{3}")
_NANOS = 999_999_999
MAX_FEEDBACK_ID = 512


@dataclass(frozen=True)
class FeedbackInput:
    """A Feedback request's fields (the servicer's conversion of FeedbackRequest)."""

    decision_id: str
    action_id: str
    outcome: decision_pb2.FeedbackOutcome.ValueType
    value: event_pb2.Money | None
    time_us: int | None  # None: now
    feedback_id: str  # '': derived
    properties: struct_pb2.Struct | None


def _violations(given: FeedbackInput) -> list[FieldViolation]:
    found = []
    if given.outcome == decision_pb2.FEEDBACK_OUTCOME_UNSPECIFIED:
        found.append(
            FieldViolation(
                "outcome", "set what happened (impression, click, conversion, dismiss)", "REQUIRED"
            )
        )
    elif given.outcome not in decision_pb2.FeedbackOutcome.values():
        found.append(FieldViolation("outcome", f"unknown outcome {given.outcome}", "INVALID"))
    if len(given.feedback_id) > MAX_FEEDBACK_ID:
        found.append(FieldViolation("feedback_id", f"at most {MAX_FEEDBACK_ID} characters", "TOO_LONG"))
    money = given.value
    if money is not None:
        if not _CURRENCY.fullmatch(money.currency_code):
            found.append(
                FieldViolation("value.currency_code", "a three-letter ISO 4217 code, such as EUR", "INVALID")
            )
        if abs(money.nanos) > _NANOS:
            found.append(FieldViolation("value.nanos", "within ±999,999,999", "OUT_OF_RANGE"))
        if money.units * money.nanos < 0:
            found.append(FieldViolation("value", "units and nanos must have the same sign", "INVALID"))
    return found


class FeedbackRecorder:
    def __init__(  # noqa: PLR0917 - the collaborators, each its own job
        self,
        traces: DecisionTraces,
        people: PersonIdentifiers,
        writer: EventWriter,
        ledger: ContactLedger | None,
        recent: RecentTraces,
        clock: Callable[[], int] = now_us,
    ) -> None:
        """`ledger` None: no contact ledger is configured, and impressions are not recorded in one."""
        self._traces = traces
        self._people = people
        self._writer = writer
        self._ledger = ledger
        self._recent = recent
        self._clock = clock

    def record(self, tenant: str, given: FeedbackInput) -> str:
        """Store the feedback; its id (as given, or `{decision_id}/{action_id}/{outcome}`)."""
        check_decision_id(given.decision_id)
        problems = _violations(given)
        if problems:
            raise FeedbackInvalid(problems)
        trace = self._traces.get(tenant, given.decision_id)
        candidate = self._candidate(trace, given.action_id)
        outcome_name = decision_pb2.FeedbackOutcome.Name(given.outcome)
        record = decision_pb2.FeedbackRecord(
            feedback_id=given.feedback_id or f"{given.decision_id}/{given.action_id}/{outcome_name}",
            action_id=given.action_id,
            outcome=given.outcome,
            value=given.value,
            properties=given.properties,
        )
        record.time.FromMicroseconds(given.time_us if given.time_us is not None else self._clock())
        try:
            identifier = self._people.identifier(tenant, trace.person_id)
        except PersonUnknown:
            if trace.person_id:  # erased since: their decisions are gone, as if never made
                raise DecisionNotFound(trace.decision_id) from None
            raise  # a decision for an identifier identity did not know: nobody to write it for
        event = feedback_event(trace, record, identifier)
        outcome = self._writer.write(tenant, [event])
        if outcome.rejected:
            why = outcome.rejected[event.event_id]
            raise FeedbackInvalid(
                [FieldViolation("feedback", f"ingest refused its event: {why}", "REJECTED")]
            )
        if (
            self._ledger is not None
            and candidate is not None
            and candidate.candidate.is_contact
            and given.outcome == decision_pb2.FEEDBACK_OUTCOME_IMPRESSION
        ):
            self._ledger.record(tenant, _contact(trace, candidate, record.time))
        self._recent.add_feedback(tenant, trace, record)
        return record.feedback_id

    @staticmethod
    def _candidate(trace: decision_pb2.Decision, action_id: str) -> decision_pb2.CandidateTrace | None:
        """The candidate the feedback is about; None for the decision as a whole (no action)."""
        if not action_id:
            return None
        for candidate in trace.candidates:
            if candidate.candidate.action_id == action_id:
                return candidate
        raise UnknownFeedbackAction(
            trace.decision_id, action_id, [c.candidate.action_id for c in trace.candidates]
        )


def _contact(
    trace: decision_pb2.Decision, candidate: decision_pb2.CandidateTrace, when: timestamp_pb2.Timestamp
) -> contact_pb2.ContactRecord:
    action = candidate.candidate
    contact = contact_pb2.ContactRecord(
        contact_id=f"{trace.decision_id}/{action.action_id}",
        person_id=trace.person_id,
        channel=action.channel or trace.channel,
        purpose=action.purpose,
        action_id=action.action_id,
        source=contact_pb2.CONTACT_SOURCE_DECISION,
        decision_id=trace.decision_id,
    )
    contact.contact_time.CopyFrom(when)
    return contact
