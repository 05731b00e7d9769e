"""Decision servers wired to the session's real identity, ingest and journeys, the trace sink in hand (the
same object the server reads its recent traces from), and hand-built Decision messages, so that the sink, the
reads and Feedback are tested on traces of every shape (Decide's own traces: tests/decision/decide)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2, decision_pb2
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import contact_policy_pb2
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_decision.traces.wiring import Traces, build_traces


def metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_HEADER, tenant), (INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN))


@dataclass
class DecisionUnderTest:
    server: Server
    traces: Traces
    stub: pb_grpc.DecisionServiceStub
    channel: grpc.Channel

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(0)


def start_decision(
    data_dir: Path, identity: str, ingest: str, journeys: str, **settings: object
) -> DecisionUnderTest:
    decision_settings = DecisionSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        identity_address=identity,
        ingest_address=ingest,
        journeys_address=journeys,
        orchestrator_address="",  # Feedback and the real ledger: decide/test_decide_contacts.py
        trace_linger_seconds=0.05,
        trace_max_backoff_seconds=0.5,
        **settings,  # type: ignore[arg-type]
    )
    traces = build_traces(decision_settings)
    server = start_server(decision_service(decision_settings, traces=traces), decision_settings)
    channel = grpc.insecure_channel(server.address)
    return DecisionUnderTest(server, traces, pb_grpc.DecisionServiceStub(channel), channel)


@pytest.fixture(scope="module")
def decision(
    identity_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DecisionUnderTest]:
    started = start_decision(
        tmp_path_factory.mktemp("decision-traces"),
        identity_server.address,
        ingest_server.address,
        journeys_server.address,
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def journeys(journeys_server: Server) -> Iterator[journeys_grpc.JourneyServiceStub]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield journeys_grpc.JourneyServiceStub(channel)


@pytest.fixture
def tenant() -> str:
    """A tenant of the test's own, so its decisions and counts are its own."""
    return f"traces-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def person(identity_server: Server, tenant: str) -> Callable[[], str]:
    """Makes a person known to identity (a user id resolved for real) and returns their person id."""

    def make() -> str:
        with grpc.insecure_channel(identity_server.address) as channel:
            stub = identity_grpc.IdentityServiceStub(channel)
            request = identity_pb.ResolveIdentitiesRequest(
                inputs=[
                    identity_pb.IdentityResolutionInput(
                        event_id=str(uuid.uuid4()),
                        event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                        identifiers=[
                            event_pb2.Identifier(type="user_id", value=f"u-{uuid.uuid4().hex[:10]}")
                        ],
                    )
                ]
            )
            request.inputs[0].timestamp.GetCurrentTime()
            response = stub.ResolveIdentities(request, metadata=metadata(tenant), timeout=10)
        return str(response.resolutions[0].person_id)

    return make


def candidate(
    action_id: str,
    outcome: decision_pb2.CandidateOutcome.ValueType,
    rank: int,
    propensity: float = 0.0,
    *,
    is_contact: bool = False,
) -> decision_pb2.CandidateTrace:
    trace = decision_pb2.CandidateTrace(
        candidate=action_pb2.CandidateAction(
            action_id=action_id,
            is_contact=is_contact,
            purpose=(
                contact_policy_pb2.CONTACT_PURPOSE_MARKETING
                if is_contact
                else contact_policy_pb2.CONTACT_PURPOSE_UNSPECIFIED
            ),
        ),
        outcome=outcome,
        rank=rank,
    )
    if outcome == decision_pb2.CANDIDATE_OUTCOME_FILTERED:
        trace.filter_reason = decision_pb2.FILTER_REASON_FREQUENCY_CAP
        trace.filtered_by = "contact_policy.frequency_caps[0]"
        trace.filter_description = "3 of 3 email contacts in the last 7 days"
    else:
        trace.factors.CopyFrom(
            decision_pb2.PriorityFactors(
                propensity=propensity, context_weight=1.0, value=10.0, lever=1.0, priority=propensity * 10
            )
        )
    return trace


def make_trace(
    person_id: str,
    *,
    decide_us: int | None = None,
    model: str = "models/next-best-offer",
    version: str = "v1",
    arm: decision_pb2.ModelArm.ValueType = decision_pb2.MODEL_ARM_STABLE,
    holdout: bool = False,
) -> decision_pb2.Decision:
    """A complete trace as Decide would hand it to the sink: three candidates, one filtered with its rule."""
    trace = decision_pb2.Decision(
        decision_id=str(uuid.uuid4()),
        person_id=person_id,
        channel=event_pb2.CHANNEL_WEB,
        placement="home-banner",
        context=struct_pb2.Struct(fields={"page": struct_pb2.Value(string_value="/home")}),
        model=model,
        model_version=version,
        arm=arm,
        feature_source=action_pb2.FEATURE_SOURCE_ONLINE,
        features={
            "orders_90d": struct_pb2.Value(number_value=3),
            "country": struct_pb2.Value(string_value="FR"),
        },
        holdout=holdout,
        holdout_group_id="control" if holdout else "",
        candidates=[
            candidate("discount-10", decision_pb2.CANDIDATE_OUTCOME_CHOSEN, 1, 0.31),
            candidate("free-shipping", decision_pb2.CANDIDATE_OUTCOME_RETURNED, 2, 0.22),
            candidate("email-winback", decision_pb2.CANDIDATE_OUTCOME_FILTERED, 0, is_contact=True),
        ],
        chosen_action_id="" if holdout else "discount-10",
        chosen_probability=0.0 if holdout else 0.9,
    )
    trace.decide_time.FromMicroseconds(decide_us if decide_us is not None else time.time_ns() // 1000)
    return trace


def wait_stored(
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    decision_id: str,
    *,
    events: int = 1,
    timeout: float = 60.0,
) -> list[event_pb2.Event]:
    """The decision's events once journeys holds at least `events` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = journeys.GetDecisionEvents(
            journeys_pb.GetDecisionEventsRequest(decision_id=decision_id),
            metadata=metadata(tenant),
            timeout=10,
        ).decision.events
        if len(found) >= events:
            return list(found)
        if time.monotonic() > deadline:
            raise TimeoutError(f"journeys holds {len(found)} of {events} events of {decision_id}")
        time.sleep(0.2)
