"""GetLifecycleModel and UpdateLifecycleModel: the built-in default until a tenant stores its own, which then
applies to GetLifecycleStages requests without a model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from tests.journeys.conditions_reference import T0, Event
from tests.journeys.conftest import Journeys, field_violations
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, lifecycle_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.conditions import LifecycleStage
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL, lifecycle_model
from wayline_journeys.lifecycle_models import LifecycleModels
from wayline_journeys.store.journey_store import JourneyStore
from wayline_journeys.store.lifecycle_models import ClickHouseLifecycleModelStore


def get(journeys: Journeys) -> lifecycle_pb2.LifecycleModel:
    response: pb.GetLifecycleModelResponse = journeys.stub.GetLifecycleModel(
        pb.GetLifecycleModelRequest(), metadata=journeys.metadata, timeout=10
    )
    return response.lifecycle_model


def update(
    journeys: Journeys, model: lifecycle_pb2.LifecycleModel, *paths: str
) -> lifecycle_pb2.LifecycleModel:
    response: pb.UpdateLifecycleModelResponse = journeys.stub.UpdateLifecycleModel(
        pb.UpdateLifecycleModelRequest(
            lifecycle_model=model, update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
        metadata=journeys.metadata,
        timeout=10,
    )
    return response.lifecycle_model


def stage_of(
    journeys: Journeys, person: str, at: datetime, model: lifecycle_pb2.LifecycleModel | None = None
) -> int:
    request = pb.GetLifecycleStagesRequest(
        persons=[event_pb2.PersonRef(person_id=person)], as_of=to_timestamp(at)
    )
    if model is not None:
        request.model.CopyFrom(model)
    response: pb.GetLifecycleStagesResponse = journeys.stub.GetLifecycleStages(
        request, metadata=journeys.metadata, timeout=10
    )
    return response.persons[0].stage


# Advocacy for anyone who bought by email; retention for anyone with a trait `vip` set.
EMAIL_BUYERS = lifecycle_pb2.LifecycleModel(
    stages=[
        lifecycle_pb2.LifecycleStageDefinition(
            stage=LifecycleStage.ADVOCACY.value,  # type: ignore[arg-type]
            condition=condition_pb2.PersonCondition(
                event_count=condition_pb2.EventCountCondition(
                    event=analytics_pb2.EventMatcher(
                        event_name="Purchased", channels=[event_pb2.CHANNEL_EMAIL]
                    )
                )
            ),
        ),
        lifecycle_pb2.LifecycleStageDefinition(
            stage=LifecycleStage.RETENTION.value,  # type: ignore[arg-type]
            condition=condition_pb2.PersonCondition(
                person_property=analytics_pb2.PropertyFilter(
                    property="person.vip", operator=analytics_pb2.FILTER_OPERATOR_IS_SET
                )
            ),
        ),
    ]
)


def test_get_lifecycle_model_is_the_built_in_default_until_updated(journeys: Journeys) -> None:
    found = get(journeys)

    assert found == BUILT_IN_MODEL
    assert found.revision == 0
    assert not found.HasField("update_time")


def test_update_lifecycle_model_round_trips_and_applies_to_requests_without_a_model(
    journeys: Journeys,
) -> None:
    person = str(uuid.uuid4())
    at = T0 + timedelta(days=2)
    journeys.write(Event(person, T0, name="Purchased", channel="email").message())
    assert stage_of(journeys, person, at) == LifecycleStage.AWARENESS  # the built-in default
    before = datetime.now(UTC)

    stored = update(journeys, EMAIL_BUYERS)

    assert list(stored.stages) == list(EMAIL_BUYERS.stages)
    assert stored.revision == 1
    assert before <= to_datetime(stored.update_time) <= datetime.now(UTC)
    assert get(journeys) == stored
    assert stage_of(journeys, person, at) == LifecycleStage.ADVOCACY
    assert (
        stage_of(journeys, person, at, BUILT_IN_MODEL) == LifecycleStage.AWARENESS
    )  # a request's model wins
    response: pb.GetLifecycleStagesResponse = journeys.stub.GetLifecycleStages(
        pb.GetLifecycleStagesRequest(as_of=to_timestamp(at)), metadata=journeys.metadata, timeout=10
    )
    assert response.model == stored  # the response says which model applied

    again = update(journeys, BUILT_IN_MODEL, "stages")

    assert (again.revision, list(again.stages)) == (2, list(BUILT_IN_MODEL.stages))
    assert stage_of(journeys, person, at) == LifecycleStage.AWARENESS
    assert get(journeys.for_tenant(f"other-{uuid.uuid4().hex[:8]}")) == BUILT_IN_MODEL  # per tenant


def test_update_lifecycle_model_refuses_invalid_models_and_masks(journeys: Journeys) -> None:
    duplicate = lifecycle_pb2.LifecycleModel()
    duplicate.CopyFrom(EMAIL_BUYERS)
    duplicate.stages.append(EMAIL_BUYERS.stages[0])
    segment = lifecycle_pb2.LifecycleModel(
        stages=[
            lifecycle_pb2.LifecycleStageDefinition(
                stage=LifecycleStage.ONBOARDING.value,  # type: ignore[arg-type]
                condition=condition_pb2.PersonCondition(
                    segment_membership=condition_pb2.SegmentMembershipCondition(segment="segments/new")
                ),
            )
        ]
    )

    for model, paths, code, violations in (
        (duplicate, (), grpc.StatusCode.INVALID_ARGUMENT, {"lifecycle_model.stages[2].stage": "DUPLICATE"}),
        (EMAIL_BUYERS, ("revision",), grpc.StatusCode.INVALID_ARGUMENT, {"update_mask.paths[0]": "INVALID"}),
        (
            segment,
            (),
            grpc.StatusCode.INVALID_ARGUMENT,
            {"lifecycle_model.stages[0].condition.segment_membership": "SEGMENT_IN_LIFECYCLE_MODEL"},
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            update(journeys, model, *paths)
        assert caught.value.code() == code
        assert field_violations(caught.value) == violations

    assert get(journeys) == BUILT_IN_MODEL  # nothing was stored


def test_a_model_updated_on_another_replica_applies_within_the_models_time_to_live(
    store: JourneyStore,
) -> None:
    """Two replicas over one store: each keeps a tenant's converted model a few seconds (a flow asks it on
    every lifecycle-stage branch); an update applies at once where it was made, within that time elsewhere."""
    now = [0.0]
    shared = ClickHouseLifecycleModelStore(lambda: store.client)
    here, there = (LifecycleModels(shared, ttl_seconds=5, clock=lambda: now[0]) for _ in range(2))
    built_in = lifecycle_model(BUILT_IN_MODEL, "", [])
    assert here.model_for("acme") == there.model_for("acme") == built_in

    here.update("acme", pb.UpdateLifecycleModelRequest(lifecycle_model=EMAIL_BUYERS))
    updated = lifecycle_model(EMAIL_BUYERS, "", [])
    assert updated != built_in
    assert here.model_for("acme") == updated  # where it was made: at once
    now[0] = 4.9
    assert there.model_for("acme") == built_in  # elsewhere: still the model it read
    now[0] = 5.0
    assert there.model_for("acme") == updated
    assert there.model_for("globex") == built_in  # per tenant
