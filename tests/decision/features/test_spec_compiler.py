"""FeatureSpec → domain definitions (spec_compiler.py): what the contract refuses is refused, every bad
field at once, and what it accepts arrives whole."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import duration_pb2, struct_pb2

from tests.contract.lifecycle_feature_refusals import REFUSED
from wayline.common.errors import InvalidArgument
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.model import (
    Aggregation,
    Comparison,
    CountTest,
    EventMatcher,
    FilterOperator,
    PropertyFilter,
)
from wayline_decision.features.spec_compiler import MAX_FEATURES, compile_spec
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL

A = feature_pb2.FeatureAggregation
COUNT, SUM, PERSON = (
    A.FEATURE_AGGREGATION_COUNT,
    A.FEATURE_AGGREGATION_SUM,
    A.FEATURE_AGGREGATION_PERSON_PROPERTY,
)
LAST = A.FEATURE_AGGREGATION_LAST_VALUE


def _spec(*features: feature_pb2.FeatureDefinition) -> feature_pb2.FeatureSpec:
    return feature_pb2.FeatureSpec(name="s", version="1", features=features)


def _filter(path: str, operator: int, *values: struct_pb2.Value) -> analytics_pb2.EventMatcher:
    f = analytics_pb2.PropertyFilter(property=path, operator=operator, values=values)  # type: ignore[arg-type]
    return analytics_pb2.EventMatcher(property_filters=[f])


def _refused(spec: feature_pb2.FeatureSpec) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        compile_spec(spec, "manifest.feature_spec.")
    return {v.field.removeprefix("manifest.feature_spec."): v.reason for v in caught.value.violations}


def test_a_valid_spec_compiles_whole() -> None:
    matcher = analytics_pb2.EventMatcher(
        event_name="Checkout",
        event_type=event_pb2.EVENT_TYPE_TRACK,
        channels=[event_pb2.CHANNEL_MOBILE_APP],
        property_filters=[
            analytics_pb2.PropertyFilter(
                property="properties.total",
                operator=analytics_pb2.FILTER_OPERATOR_GREATER_THAN,
                values=[struct_pb2.Value(number_value=10)],
            )
        ],
    )
    spec = compile_spec(
        _spec(
            feature_pb2.FeatureDefinition(
                name="big_checkouts_7d",
                aggregation=SUM,
                property="properties.total",
                events=matcher,
                window=duration_pb2.Duration(seconds=7 * 86400, nanos=1500),
                default_value=struct_pb2.Value(number_value=0),
            ),
            feature_pb2.FeatureDefinition(
                name="tier",
                aggregation=PERSON,
                property="person.tier",
                value_type=feature_pb2.FEATURE_VALUE_TYPE_CATEGORY,
                categories=["gold"],
                unknown_category=feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER,
            ),
        )
    )
    first, tier = spec.features
    assert first.aggregation is Aggregation.SUM
    assert first.events == EventMatcher(
        "Checkout",
        "track",
        ("mobile_app",),
        (PropertyFilter("properties.total", FilterOperator.GREATER_THAN, (10.0,)),),
    )
    assert first.window_us == 7 * 86400 * 1_000_000 + 1  # whole microseconds, as the store keeps time
    assert first.default == 0.0
    assert (tier.aggregation, tier.property, tier.default) == (
        Aggregation.PERSON_PROPERTY,
        "person.tier",
        None,
    )
    assert spec.key == ("s", "1")
    assert spec.encoder.encode([1.5, "gold"]) == [1.5, 0.0]
    assert spec.encoder.encode([None, "silver"])[1] == 1.0  # an unknown category, as OTHER
    assert math.isnan(spec.encoder.encode([None, "x"])[0])


TEXT = struct_pb2.Value(string_value="x")
A_LIST = struct_pb2.Value(list_value=struct_pb2.ListValue())


def _one(**fields: Any) -> feature_pb2.FeatureSpec:
    return _spec(feature_pb2.FeatureDefinition(**fields))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (feature_pb2.FeatureSpec(), "features"),
        (_one(name="Bad Name", aggregation=COUNT), "features[0].name"),
        (_one(name="x"), "features[0].aggregation"),
        (_one(name="x", aggregation=SUM), "features[0].property"),  # SUM reads a property
        (_one(name="x", aggregation=SUM, property="amount"), "features[0].property"),
        (_one(name="x", aggregation=COUNT, property="properties.a"), "features[0].property"),
        (_one(name="x", aggregation=PERSON, property="properties.a", value_type=1), "features[0].property"),
        (_one(name="x", aggregation=COUNT, window=duration_pb2.Duration(seconds=-5)), "features[0].window"),
        (_one(name="x", aggregation=COUNT, window=duration_pb2.Duration(nanos=999)), "features[0].window"),
        (
            _one(name="x", aggregation=COUNT, events=_filter("person.tier", 1, TEXT)),
            "features[0].events.property_filters[0].property",
        ),
        (
            _one(
                name="x",
                aggregation=COUNT,
                events=analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_UNSPECIFIED]),
            ),
            "features[0].events.channels",
        ),
        # Numbers the contract does not define (a manifest's JSON may hold any): Name() raised ValueError.
        (
            _one(name="x", aggregation=COUNT, events=analytics_pb2.EventMatcher(channels=[99])),  # type: ignore[list-item]
            "features[0].events.channels",
        ),
        (
            _one(name="x", aggregation=COUNT, events=analytics_pb2.EventMatcher(event_type=99)),  # type: ignore[arg-type]
            "features[0].events.event_type",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 0, TEXT)),
            "features[0].events.property_filters[0].operator",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 1)),
            "features[0].events.property_filters[0].values",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 10, TEXT)),
            "features[0].events.property_filters[0].values",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 6, TEXT)),
            "features[0].events.property_filters[0].values[0]",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 5, TEXT, TEXT)),
            "features[0].events.property_filters[0].values",
        ),
        (
            _one(
                name="x",
                aggregation=COUNT,
                events=_filter("properties.a", 5, struct_pb2.Value(string_value="(")),
            ),
            "features[0].events.property_filters[0].values[0]",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("properties.a", 1, A_LIST)),
            "features[0].events.property_filters[0].values[0]",
        ),
        (
            _one(name="x", aggregation=COUNT, events=_filter("nowhere", 10)),
            "features[0].events.property_filters[0].property",
        ),
        (_one(name="x", aggregation=COUNT, default_value=A_LIST), "features[0].default_value"),
        (
            _one(name="x", aggregation=LAST, property="properties.a"),
            "features[0].value_type",
        ),  # spec_violations
        (
            _one(name="x", aggregation=COUNT, value_type=feature_pb2.FEATURE_VALUE_TYPE_CATEGORY),
            "features[0].value_type",
        ),
        (_spec(*[feature_pb2.FeatureDefinition(name="x", aggregation=COUNT)] * 2), "features[1].name"),
        (
            _spec(
                *[
                    feature_pb2.FeatureDefinition(name=f"f{i}", aggregation=COUNT)
                    for i in range(MAX_FEATURES + 1)
                ]
            ),
            "features",
        ),
    ],
)
def test_the_contract_s_refusals_are_refused(spec: feature_pb2.FeatureSpec, field: str) -> None:
    assert field in _refused(spec)


@pytest.mark.parametrize(("spec", "field"), REFUSED)
def test_lifecycle_stage_features_are_refused_as_journeys_refuses_them(
    spec: feature_pb2.FeatureSpec, field: str
) -> None:
    assert field in _refused(spec)


def test_a_lifecycle_stage_feature_compiles_its_model_highest_stage_first() -> None:
    spec = _spec(
        feature_pb2.FeatureDefinition(
            name="stage", aggregation=A.FEATURE_AGGREGATION_LIFECYCLE_STAGE, lifecycle_model=BUILT_IN_MODEL
        )
    )
    (stage,) = compile_spec(spec).features
    assert stage.aggregation is Aggregation.LIFECYCLE_STAGE
    assert stage.lifecycle is not None
    ranked = stage.lifecycle.ranked
    assert [number for number, _ in ranked] == [6, 5, 4, 3, 2]  # awareness is the fallback, not a test
    retention = ranked[1][1]
    assert retention == CountTest(
        EventMatcher(filters=(PropertyFilter("revenue", FilterOperator.IS_SET),)),
        Comparison.GREATER_THAN_OR_EQUAL,
        2,
        180 * 86_400_000_000,
    )


def test_every_violation_is_reported_at_once() -> None:
    spec = _spec(
        feature_pb2.FeatureDefinition(name="Bad", aggregation=COUNT),
        feature_pb2.FeatureDefinition(name="y", aggregation=SUM),
        feature_pb2.FeatureDefinition(name="z", aggregation=LAST, property="properties.a"),
    )
    assert set(_refused(spec)) == {"features[0].name", "features[1].property", "features[2].value_type"}
