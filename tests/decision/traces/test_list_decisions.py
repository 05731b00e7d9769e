"""ListDecisions over real gRPC, with real identity, ingest and journeys: one person's decisions, the newest
first, paged, by person id or by identifier, without their feedback; tokens bound to the person; tenants
apart; refusals of malformed requests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.decision.traces.conftest import DecisionUnderTest, make_trace, metadata, wait_stored
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc

SECOND = 1_000_000


def listed(decision: DecisionUnderTest, tenant: str, **request: Any) -> pb.ListDecisionsResponse:
    response: pb.ListDecisionsResponse = decision.stub.ListDecisions(
        pb.ListDecisionsRequest(**request), metadata=metadata(tenant), timeout=10
    )
    return response


def identifier_of(identity_server: Server, tenant: str, person_id: str) -> event_pb2.Identifier:
    with grpc.insecure_channel(identity_server.address) as channel:
        profile = (
            identity_grpc.IdentityServiceStub(channel)
            .GetProfile(
                identity_pb.GetProfileRequest(person=event_pb2.PersonRef(person_id=person_id)),
                metadata=metadata(tenant),
                timeout=10,
            )
            .profile
        )
    return profile.identifiers[0].identifier


def test_list_decisions_pages_a_persons_decisions_newest_first(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
    identity_server: Server,
) -> None:
    start = time.time_ns() // 1000 - 600 * SECOND
    someone, other = person(), person()
    mine = [make_trace(someone, decide_us=start + i * SECOND, version=f"v{i}") for i in (1, 0, 2)]
    theirs = make_trace(other, decide_us=start + 5 * SECOND)
    for trace in [*mine, theirs]:
        decision.traces.sink.record(tenant, trace)
    decision.stub.Feedback(
        pb.FeedbackRequest(
            decision_id=mine[0].decision_id,
            action_id="discount-10",
            outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
        ),
        metadata=metadata(tenant),
        timeout=10,
    )
    wait_stored(journeys, tenant, mine[0].decision_id, events=2)
    for trace in [*mine[1:], theirs]:
        wait_stored(journeys, tenant, trace.decision_id)
    newest_first = sorted(mine, key=lambda t: -t.decide_time.ToMicroseconds())

    first = listed(decision, tenant, person=event_pb2.PersonRef(person_id=someone), page_size=2)
    assert [d.decision_id for d in first.decisions] == [t.decision_id for t in newest_first[:2]]
    assert first.person_id == someone
    assert first.next_page_token
    second = listed(
        decision,
        tenant,
        person=event_pb2.PersonRef(person_id=someone),
        page_size=2,
        page_token=first.next_page_token,
    )
    assert [d.decision_id for d in second.decisions] == [newest_first[2].decision_id]
    assert second.next_page_token == ""
    # Each is the whole trace as recorded (candidates, rules, factors, model), without its feedback.
    clicked = next(d for d in [*first.decisions, *second.decisions] if d.decision_id == mine[0].decision_id)
    assert clicked == mine[0]
    assert list(clicked.feedback) == []

    by_identifier = listed(
        decision,
        tenant,
        person=event_pb2.PersonRef(identifier=identifier_of(identity_server, tenant, someone)),
    )
    assert [d.decision_id for d in by_identifier.decisions] == [t.decision_id for t in newest_first]
    assert by_identifier.person_id == someone
    assert by_identifier.next_page_token == ""

    # A token is bound to its person: replayed for another, it is refused rather than leaking their page.
    with pytest.raises(grpc.RpcError) as raised:
        listed(
            decision, tenant, person=event_pb2.PersonRef(person_id=other), page_token=first.next_page_token
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "INVALID_PAGE_TOKEN"
    assert [
        d.decision_id for d in listed(decision, tenant, person=event_pb2.PersonRef(person_id=other)).decisions
    ] == [theirs.decision_id]
    # Another tenant sees none of them, by person id or by identifier.
    intruder = f"{tenant}-other"
    assert list(listed(decision, intruder, person=event_pb2.PersonRef(person_id=someone)).decisions) == []
    assert listed(decision, intruder, person=by_identifier_ref(identity_server, tenant, someone)) == (
        pb.ListDecisionsResponse()
    )


def by_identifier_ref(identity_server: Server, tenant: str, person_id: str) -> event_pb2.PersonRef:
    return event_pb2.PersonRef(identifier=identifier_of(identity_server, tenant, person_id))


def test_list_decisions_of_an_identifier_no_event_carries_is_an_empty_page(
    decision: DecisionUnderTest, tenant: str
) -> None:
    unknown = event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex}@example.com")
    assert (
        listed(decision, tenant, person=event_pb2.PersonRef(identifier=unknown)) == pb.ListDecisionsResponse()
    )


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({}, "person"),
        ({"person": event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email"))}, "person"),
        ({"person": event_pb2.PersonRef(person_id="p-1"), "page_size": -1}, "page_size"),
        ({"person": event_pb2.PersonRef(person_id="p-1"), "page_token": "not-a-token"}, "page_token"),
    ],
)
def test_list_decisions_refuses_a_malformed_request(
    decision: DecisionUnderTest, tenant: str, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        listed(decision, tenant, **request_fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(raised.value)
