"""GetDecisionEvents, ExportDecisionEvents and CountDecisionOutcomes over the real journeys server: the
decision service's events indexed by decision id as they are written (retries collapse), scoped by tenant,
erased with the person."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.journeys.conftest import T0, Journeys, field_violations, new_person
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


def decision_event(
    person: str, decision_id: str, name: str = "Decision Logged", minute: int = 0, **properties: str
) -> event_pb2.Event:
    at = to_timestamp(T0 + timedelta(minutes=minute))
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_OTHER,
        timestamp=at,
        received_at=at,
        identifiers=[event_pb2.Identifier(type="user_id", value=person)],
        person_id=person,
        properties=struct_pb2.Struct(
            fields={
                k: struct_pb2.Value(string_value=v)
                for k, v in {"decision_id": decision_id, **properties}.items()
            }
        ),
    )


def did(event: event_pb2.Event) -> str:
    return event.properties.fields["decision_id"].string_value


def events_of(journeys: Journeys, decision_id: str) -> list[event_pb2.Event]:
    response = journeys.stub.GetDecisionEvents(
        pb.GetDecisionEventsRequest(decision_id=decision_id), metadata=journeys.metadata, timeout=10
    )
    return list(response.decision.events)


def test_decision_events_are_indexed_on_write_and_retries_collapse(journeys: Journeys) -> None:
    person, decision_id = new_person(), str(uuid.uuid4())
    feedback = decision_event(
        person, decision_id, "Decision Feedback", minute=5, outcome="FEEDBACK_OUTCOME_CLICK"
    )
    logged = decision_event(person, decision_id, model="models/m")
    journeys.write(feedback)  # feedback may arrive first: the log event still reads first
    journeys.write(logged, decision_event(person, "", name="Decision Logged"))
    journeys.write(logged)  # a retry
    assert [e.event_id for e in events_of(journeys, decision_id)] == [logged.event_id, feedback.event_id]
    assert events_of(journeys.for_tenant(f"{journeys.tenant}-other"), decision_id) == []


def test_export_and_counts_read_only_the_tenants_decisions(journeys: Journeys) -> None:
    person = new_person()
    logged = [
        decision_event(person, str(uuid.uuid4()), minute=m, model="models/m", model_version="v1", arm=arm)
        for m, arm in ((2, "MODEL_ARM_STABLE"), (0, "MODEL_ARM_CANARY"), (1, "MODEL_ARM_STABLE"))
    ]
    converted = decision_event(
        person,
        did(logged[0]),
        "Decision Feedback",
        minute=9,
        model="models/m",
        outcome="FEEDBACK_OUTCOME_CONVERSION",
    )
    journeys.write(*logged, converted)
    journeys.for_tenant(f"{journeys.tenant}-other").write(
        decision_event(person, str(uuid.uuid4()), model="models/m")
    )
    stream = journeys.stub.ExportDecisionEvents(
        pb.ExportDecisionEventsRequest(model="models/m", batch_size=2), metadata=journeys.metadata, timeout=30
    )
    batches = [[d.decision_id for d in r.decisions] for r in stream]
    in_time = [logged[1], logged[2], logged[0]]
    assert batches == [
        [did(e) for e in in_time[:2]],
        [did(in_time[2])],
    ]
    counts = journeys.stub.CountDecisionOutcomes(
        pb.CountDecisionOutcomesRequest(model="models/m"), metadata=journeys.metadata, timeout=10
    ).counts
    assert [(c.arm, c.decisions, c.converted_decisions) for c in counts] == [
        ("MODEL_ARM_CANARY", 1, 0),
        ("MODEL_ARM_STABLE", 2, 1),
    ]


def test_decision_events_are_erased_with_the_person(journeys: Journeys) -> None:
    person, decision_id = new_person(), str(uuid.uuid4())
    journeys.write(decision_event(person, decision_id))
    assert len(events_of(journeys, decision_id)) == 1
    journeys.delete(person)
    assert events_of(journeys, decision_id) == []


def test_decision_event_reads_validate_their_requests(journeys: Journeys) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        events_of(journeys, "")
    assert field_violations(raised.value) == {"decision_id": "REQUIRED"}
    with pytest.raises(grpc.RpcError) as raised:
        journeys.stub.CountDecisionOutcomes(
            pb.CountDecisionOutcomesRequest(), metadata=journeys.metadata, timeout=10
        )
    assert field_violations(raised.value) == {"model": "REQUIRED"}
    with pytest.raises(grpc.RpcError) as raised:
        list(
            journeys.stub.ExportDecisionEvents(
                pb.ExportDecisionEventsRequest(batch_size=1001), metadata=journeys.metadata, timeout=10
            )
        )
    assert field_violations(raised.value) == {"batch_size": "OUT_OF_RANGE"}
