"""GetDecision over real gRPC, with real identity, ingest and journeys: a trace written through the sink is
found at once (recent traces) and, by another replica, once the journey store has it; tenants are apart."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tests.decision.traces.conftest import (
    DecisionUnderTest,
    make_trace,
    metadata,
    start_decision,
    wait_stored,
)
from wayline.common.server import Server
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.traces.events import DECISION_LOGGED, trace_event_id


def test_get_decision_finds_a_recorded_trace_at_once(
    decision: DecisionUnderTest, tenant: str, person: Callable[[], str]
) -> None:
    trace = make_trace(person())
    decision.traces.sink.record(tenant, trace)
    found = decision.stub.GetDecision(
        pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(tenant), timeout=10
    ).decision
    assert found == trace


def test_get_decision_reads_the_store_from_another_replica(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
    identity_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    tmp_path: Path,
) -> None:
    trace = make_trace(person())
    decision.traces.sink.record(tenant, trace)
    (stored,) = wait_stored(journeys, tenant, trace.decision_id)
    assert stored.name == DECISION_LOGGED
    assert stored.event_id == trace_event_id(trace.decision_id)
    assert stored.person_id == trace.person_id  # identity resolved the identifier the sink sent
    fields = stored.properties.fields
    # The format `wayline ml export` trains from.
    assert fields["decision_id"].string_value == trace.decision_id
    assert fields["action"].string_value == "discount-10"
    assert fields["propensity"].number_value == pytest.approx(0.9)
    other = start_decision(tmp_path, identity_server.address, ingest_server.address, journeys_server.address)
    try:
        found = other.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(tenant), timeout=10
        ).decision
    finally:
        other.stop()
    assert (
        found == trace
    )  # every candidate, its filter rule, every priority factor, the model, the probability


def test_get_decision_is_scoped_by_tenant(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    trace = make_trace(person())
    decision.traces.sink.record(tenant, trace)
    intruder = f"{tenant}-other"
    for _ in ("recent", "stored"):
        with pytest.raises(grpc.RpcError) as raised:
            decision.stub.GetDecision(
                pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(intruder), timeout=10
            )
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        wait_stored(journeys, tenant, trace.decision_id)


def test_get_decision_unknown_is_not_found_and_empty_is_invalid(
    decision: DecisionUnderTest, tenant: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        decision.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=str(uuid.uuid4())), metadata=metadata(tenant), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "DECISION_NOT_FOUND" in str(raised.value.trailing_metadata())
    with pytest.raises(grpc.RpcError) as raised:
        decision.stub.GetDecision(pb.GetDecisionRequest(), metadata=metadata(tenant), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
