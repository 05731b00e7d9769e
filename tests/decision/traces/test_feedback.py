"""Feedback over real gRPC with real identity, ingest and journeys: validation per the contract, idempotency
by feedback id (one stored event for repeated calls), the decision's logged propensity, model version and
arm on the stored event, and GetDecision showing the feedback at once and from the store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from tests.decision.traces.conftest import DecisionUnderTest, make_trace, metadata, wait_stored
from wayline.common.errors import status_details
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.traces.events import DECISION_FEEDBACK

EUR_42 = event_pb2.Money(currency_code="EUR", units=42, nanos=500_000_000)


def reason(error: grpc.RpcError) -> str:
    return str(next(d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)))


def fields(error: grpc.RpcError) -> list[str]:
    return [
        v.field
        for d in status_details(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    ]


def feedback(decision: DecisionUnderTest, tenant: str, **request: Any) -> pb.FeedbackResponse:
    response: pb.FeedbackResponse = decision.stub.Feedback(
        pb.FeedbackRequest(**request),
        metadata=metadata(tenant),
        timeout=10,
    )
    return response


def refused(decision: DecisionUnderTest, tenant: str, **request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        feedback(decision, tenant, **request)
    return raised.value


def test_feedback_validates_its_request(
    decision: DecisionUnderTest, tenant: str, person: Callable[[], str]
) -> None:
    trace = make_trace(person())
    decision.traces.sink.record(tenant, trace)
    unspecified = refused(decision, tenant, decision_id=trace.decision_id, action_id="discount-10")
    assert unspecified.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(unspecified) == ["outcome"]
    unknown = refused(
        decision, tenant, decision_id=str(uuid.uuid4()), outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK
    )
    assert (unknown.code(), reason(unknown)) == (grpc.StatusCode.NOT_FOUND, "DECISION_NOT_FOUND")
    stranger = refused(
        decision,
        tenant,
        decision_id=trace.decision_id,
        action_id="not-a-candidate",
        outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
    )
    assert (stranger.code(), reason(stranger)) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_ACTION")
    assert "discount-10" in (stranger.details() or "")  # the message lists the candidates
    bad_money = refused(
        decision,
        tenant,
        decision_id=trace.decision_id,
        action_id="discount-10",
        outcome=decision_pb2.FEEDBACK_OUTCOME_CONVERSION,
        value=event_pb2.Money(currency_code="euro", units=1, nanos=-5),
    )
    assert bad_money.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields(bad_money)) == ["value", "value.currency_code"]
    beyond_9999 = refused(
        decision,
        tenant,
        decision_id=trace.decision_id,
        action_id="discount-10",
        outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
        time=Timestamp(seconds=2**62),  # any int64 travels; no record or event can hold it
    )
    assert (beyond_9999.code(), fields(beyond_9999)) == (grpc.StatusCode.INVALID_ARGUMENT, ["time"])
    no_decision = refused(decision, tenant, outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK)
    assert fields(no_decision) == ["decision_id"]
    other_tenant = refused(
        decision,
        f"{tenant}-other",
        decision_id=trace.decision_id,
        outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
    )
    assert other_tenant.code() == grpc.StatusCode.NOT_FOUND


def test_feedback_is_idempotent_and_stored_with_the_logged_propensity(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    trace = make_trace(person(), version="v7", arm=decision_pb2.MODEL_ARM_CANARY)
    decision.traces.sink.record(tenant, trace)
    conversion = {
        "decision_id": trace.decision_id,
        "action_id": "discount-10",
        "outcome": decision_pb2.FEEDBACK_OUTCOME_CONVERSION,
        "value": EUR_42,
        "properties": struct_pb2.Struct(fields={"order_id": struct_pb2.Value(string_value="o-1")}),
    }
    ids = {feedback(decision, tenant, **conversion).feedback_id for _ in range(3)}
    assert ids == {f"{trace.decision_id}/discount-10/FEEDBACK_OUTCOME_CONVERSION"}
    # Seen at once, before the store has it.
    shown = decision.stub.GetDecision(
        pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(tenant), timeout=10
    ).decision
    assert [(f.action_id, f.outcome, f.value) for f in shown.feedback] == [
        ("discount-10", decision_pb2.FEEDBACK_OUTCOME_CONVERSION, EUR_42)
    ]
    click = feedback(
        decision,
        tenant,
        decision_id=trace.decision_id,
        action_id="free-shipping",
        outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
    )
    stored = wait_stored(journeys, tenant, trace.decision_id, events=3)
    assert len(stored) == 3  # the log event, one conversion for three calls, one click
    conversions = [
        e
        for e in stored
        if e.name == DECISION_FEEDBACK and e.properties["outcome"] == "FEEDBACK_OUTCOME_CONVERSION"
    ]
    (event,) = conversions
    props = event.properties
    assert (props["propensity"], props["model_version"], props["arm"]) == (0.9, "v7", "MODEL_ARM_CANARY")
    assert event.revenue == EUR_42  # what the ML export's label sums
    assert event.person_id == trace.person_id
    read = decision.stub.GetDecision(
        pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(tenant), timeout=10
    ).decision
    # From the store now, oldest first.
    assert [f.feedback_id for f in read.feedback] == [
        f"{trace.decision_id}/discount-10/FEEDBACK_OUTCOME_CONVERSION",
        click.feedback_id,
    ]
    assert read.feedback[0].properties["order_id"] == "o-1"


def test_feedback_on_a_holdout_decision_as_a_whole(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    trace = make_trace(person(), holdout=True)
    decision.traces.sink.record(tenant, trace)
    given = feedback(
        decision, tenant, decision_id=trace.decision_id, outcome=decision_pb2.FEEDBACK_OUTCOME_CONVERSION
    )
    assert given.feedback_id == f"{trace.decision_id}//FEEDBACK_OUTCOME_CONVERSION"
    logged, _ = sorted(
        wait_stored(journeys, tenant, trace.decision_id, events=2), key=lambda e: e.name != "Decision Logged"
    )
    assert "action" not in logged.properties
    assert "propensity" not in logged.properties
    assert logged.properties["holdout"] is True
