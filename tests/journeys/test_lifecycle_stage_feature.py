"""The LIFECYCLE_STAGE feature aggregation: the stage GetProfileFeatures and ExportTrainingSet give equals the
one GetLifecycleStages gives for the same model and time, and the plain-Python reference's, on generated logs
with random models; the spec's model is what counts, not the tenant's; the refusals name the field.
(Online/offline parity with the decision service is tests/contract/test_feature_parity.py's.)"""

from __future__ import annotations

import random
from datetime import timedelta

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from tests.breadth import seeds
from tests.contract.lifecycle_feature_refusals import REFUSED
from tests.journeys.conditions_reference import T0, Person, generated_log, model, persons_of
from tests.journeys.conftest import Journeys, field_violations
from tests.journeys.features_data import python
from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import condition_pb2, feature_pb2, lifecycle_pb2, training_set_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.conditions import LifecycleStage
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL, lifecycle_model

TIMES = [T0 + timedelta(days=d) for d in (2, 40, 95.5, 150, 201)]


def stage_spec(message: lifecycle_pb2.LifecycleModel) -> feature_pb2.FeatureSpec:
    """Two stage features on one model: without a default (missing before the first event) and with 0."""
    return feature_pb2.FeatureSpec(
        name="stages",
        version="1",
        features=[
            feature_pb2.FeatureDefinition(
                name="stage",
                aggregation=feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE,
                lifecycle_model=message,
                value_type=feature_pb2.FEATURE_VALUE_TYPE_INT,
            ),
            feature_pb2.FeatureDefinition(
                name="stage_or_zero",
                aggregation=feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE,
                lifecycle_model=message,
                default_value=struct_pb2.Value(number_value=0),
            ),
        ],
    )


def _converted(message: lifecycle_pb2.LifecycleModel) -> LifecycleModel:
    violations: list[FieldViolation] = []
    found = lifecycle_model(message, "", violations)
    assert violations == []
    return found


def stage_of(
    journeys: Journeys, message: lifecycle_pb2.LifecycleModel | None, person: str, at: timestamp_pb2.Timestamp
) -> int:
    """The person's stage by GetLifecycleStages under `message` (None: the tenant's model)."""
    request = pb.GetLifecycleStagesRequest(persons=[event_pb2.PersonRef(person_id=person)], as_of=at)
    if message is not None:
        request.model.CopyFrom(message)
    response: pb.GetLifecycleStagesResponse = journeys.stub.GetLifecycleStages(
        request, metadata=journeys.metadata, timeout=30
    )
    return response.persons[0].stage


@pytest.mark.parametrize("seed", seeds(*range(4)))
def test_lifecycle_stage_feature_is_the_stage_get_lifecycle_stages_gives(
    journeys: Journeys, seed: int
) -> None:
    rng = random.Random(700 + seed)
    log = generated_log(rng, persons=10)
    journeys.write(*(e.message() for e in log))
    persons = persons_of(log)
    message, reference = BUILT_IN_MODEL, _converted(BUILT_IN_MODEL)
    for _ in range(50 if seed else 0):  # a random model that tells persons apart: 3 stages, missing included
        message = model(rng, feature=True)
        reference = _converted(message)
        reached = {Person(e, t).stage(reference) for e in persons.values() for t in TIMES}
        if len(reached) >= 3:
            break
    spec = stage_spec(message)
    wanted = {(p, at): Person(events, at).stage(reference) for p, events in persons.items() for at in TIMES}
    assert len(set(wanted.values())) >= 3  # the log and model reach several stages, missing included

    # GetLifecycleStages: every person at each time in one call.
    for at in TIMES:
        stages = pb.GetLifecycleStagesRequest(
            persons=[event_pb2.PersonRef(person_id=p) for p in persons], as_of=to_timestamp(at), model=message
        )
        response = journeys.stub.GetLifecycleStages(stages, metadata=journeys.metadata, timeout=30)
        found = [(p.person_id, LifecycleStage(p.stage)) for p in response.persons]
        assert found == [(p, wanted[p, at]) for p in persons]

    # The features: every (person, time) listed to ExportTrainingSet (persons without an event yet included),
    # and a sample through GetProfileFeatures, the same store call.
    observations = [
        training_set_pb2.Observation(person_id=p, observation_time=to_timestamp(at)) for p, at in wanted
    ]
    export = pb.ExportTrainingSetRequest(spec=spec, observations=observations)
    rows = [row for response in journeys.export_training_set(export) for row in response.rows.rows]
    assert len(rows) == len(wanted)
    for row, ((person, at), stage) in zip(rows, wanted.items(), strict=True):
        assert (row.person_id, row.observation_time) == (person, to_timestamp(at))
        expected = None if stage is LifecycleStage.UNSPECIFIED else float(stage)
        assert [python(v) for v in row.feature_values] == [expected, expected or 0.0], (person, at)
    for person, at in rng.sample(sorted(wanted), 4):
        request = pb.GetProfileFeaturesRequest(
            person=event_pb2.PersonRef(person_id=person), spec=spec, as_of=to_timestamp(at)
        )
        values = journeys.profile_features(request).features.values
        stage = wanted[person, at]
        expected = None if stage is LifecycleStage.UNSPECIFIED else float(stage)
        assert (python(values["stage"]), python(values["stage_or_zero"])) == (expected, expected or 0.0)


def test_lifecycle_stage_feature_uses_the_specs_model_not_the_tenants(journeys: Journeys) -> None:
    rng = random.Random(3)
    log = generated_log(rng, persons=6)
    journeys.write(*(e.message() for e in log))
    # The tenant's model puts everyone with an event in advocacy; the spec's is the built-in default.
    everyone = lifecycle_pb2.LifecycleModel(
        stages=[
            lifecycle_pb2.LifecycleStageDefinition(
                stage=6,  # type: ignore[arg-type]
                condition=condition_pb2.PersonCondition(
                    event_count=condition_pb2.EventCountCondition(count=1)
                ),
            )
        ]
    )
    journeys.stub.UpdateLifecycleModel(
        pb.UpdateLifecycleModelRequest(lifecycle_model=everyone), metadata=journeys.metadata, timeout=10
    )
    reference = _converted(BUILT_IN_MODEL)
    at = TIMES[-1]
    for person, events in persons_of(log).items():
        request = pb.GetProfileFeaturesRequest(
            person=event_pb2.PersonRef(person_id=person),
            spec=stage_spec(BUILT_IN_MODEL),
            as_of=to_timestamp(at),
        )
        found = python(journeys.profile_features(request).features.values["stage"])
        assert found == float(Person(events, at).stage(reference))
        assert stage_of(journeys, None, person, to_timestamp(at)) == 6


@pytest.mark.parametrize(("spec", "field"), REFUSED)
def test_lifecycle_stage_feature_refusals_name_the_field(
    journeys: Journeys, spec: feature_pb2.FeatureSpec, field: str
) -> None:
    request = pb.GetProfileFeaturesRequest(person=event_pb2.PersonRef(person_id="p"), spec=spec)
    with pytest.raises(grpc.RpcError) as caught:
        journeys.profile_features(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"spec.{field}" in field_violations(caught.value), field_violations(caught.value)
