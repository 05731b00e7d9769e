"""Lifecycle-stage features that the contract refuses, with the field each refusal must name (under the
spec's path): journeys (GetProfileFeatures, ExportTrainingSet) and the decision service (spec compiler,
package upload) must refuse the same specs for the same reasons."""

from __future__ import annotations

from typing import Any

from wayline.journeys.v1 import analytics_pb2, condition_pb2, feature_pb2, lifecycle_pb2
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL

__all__ = ["REFUSED"]

STAGE = feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE


def _spec(**fields: Any) -> feature_pb2.FeatureSpec:
    return feature_pb2.FeatureSpec(
        name="bad", version="1", features=[feature_pb2.FeatureDefinition(name="stage", **fields)]
    )


def _model(stage: int = 4, **condition: Any) -> lifecycle_pb2.LifecycleModel:
    return lifecycle_pb2.LifecycleModel(
        stages=[
            lifecycle_pb2.LifecycleStageDefinition(
                stage=stage,  # type: ignore[arg-type]
                condition=condition_pb2.PersonCondition(**condition),
            )
        ]
    )


def _where(path: str) -> analytics_pb2.PropertyFilter:
    return analytics_pb2.PropertyFilter(property=path, operator=analytics_pb2.FILTER_OPERATOR_IS_SET)


_SEQUENCE = condition_pb2.SequenceCondition(
    steps=[analytics_pb2.EventMatcher(event_name="a"), analytics_pb2.EventMatcher(event_name="b")]
)
_PERSON_FILTERED = condition_pb2.EventCountCondition(
    event=analytics_pb2.EventMatcher(property_filters=[_where("person.plan")]), count=1
)
_CONDITION = "features[0].lifecycle_model.stages[0].condition"

REFUSED: list[tuple[feature_pb2.FeatureSpec, str]] = [
    (_spec(aggregation=STAGE), "features[0].lifecycle_model"),
    (_spec(aggregation=STAGE, lifecycle_model=_model(sequence=_SEQUENCE)), f"{_CONDITION}.sequence"),
    (
        _spec(aggregation=STAGE, lifecycle_model=_model(has_identifier_type="email")),
        f"{_CONDITION}.has_identifier_type",
    ),
    (
        _spec(aggregation=STAGE, lifecycle_model=_model(event_count=_PERSON_FILTERED)),
        f"{_CONDITION}.event_count.event.property_filters[0].property",
    ),
    (
        _spec(
            aggregation=STAGE,
            lifecycle_model=_model(event_count=condition_pb2.EventCountCondition(count=-1)),
        ),
        f"{_CONDITION}.event_count.count",
    ),
    (
        _spec(aggregation=STAGE, lifecycle_model=_model(person_property=_where("properties.plan"))),
        f"{_CONDITION}.person_property.property",
    ),
    (
        _spec(aggregation=STAGE, lifecycle_model=_model(stage=0, has_identifier_type="email")),
        "features[0].lifecycle_model.stages[0].stage",
    ),
    (
        _spec(
            aggregation=STAGE,
            lifecycle_model=BUILT_IN_MODEL,
            events=analytics_pb2.EventMatcher(event_name="x"),
        ),
        "features[0].events",
    ),
    (
        _spec(aggregation=STAGE, lifecycle_model=BUILT_IN_MODEL, property="properties.x"),
        "features[0].property",
    ),
    (
        _spec(aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT, lifecycle_model=BUILT_IN_MODEL),
        "features[0].lifecycle_model",
    ),
    (
        _spec(
            aggregation=STAGE,
            lifecycle_model=BUILT_IN_MODEL,
            value_type=feature_pb2.FEATURE_VALUE_TYPE_CATEGORY,
            categories=["a"],
        ),
        "features[0].value_type",
    ),
]
