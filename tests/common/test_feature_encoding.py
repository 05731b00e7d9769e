"""The feature encoding the contract states (FeatureValueType) and the typing rules of a spec."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import struct_pb2

from wayline.common.feature_encoding import encoder_for, python_value, spec_violations
from wayline.journeys.v1 import feature_pb2 as fpb

A = fpb.FeatureAggregation


def _spec(*features: fpb.FeatureDefinition) -> fpb.FeatureSpec:
    return fpb.FeatureSpec(name="s", version="1", features=features)


def _feature(
    name: str,
    aggregation: fpb.FeatureAggregation.ValueType,
    value_type: fpb.FeatureValueType.ValueType = fpb.FEATURE_VALUE_TYPE_UNSPECIFIED,
    categories: tuple[str, ...] | list[str] = (),
    unknown_category: fpb.UnknownCategoryEncoding.ValueType = fpb.UNKNOWN_CATEGORY_ENCODING_UNSPECIFIED,
) -> fpb.FeatureDefinition:
    return fpb.FeatureDefinition(
        name=name,
        aggregation=aggregation,
        property="properties.x",
        value_type=value_type,
        categories=categories,
        unknown_category=unknown_category,
    )


def test_numbers_booleans_and_missing_encode_as_the_contract_says() -> None:
    encoder = encoder_for(
        _spec(
            _feature("f", A.FEATURE_AGGREGATION_SUM),
            _feature("i", A.FEATURE_AGGREGATION_COUNT, fpb.FEATURE_VALUE_TYPE_INT),
            _feature("b", A.FEATURE_AGGREGATION_LAST_VALUE, fpb.FEATURE_VALUE_TYPE_BOOL),
        )
    )
    assert encoder.encode([2.5, 3.0, True]) == [2.5, 3.0, 1.0]
    assert encoder.encode([True, False, 0.0]) == [1.0, 0.0, 0.0]
    assert encoder.encode([None, None, -2])[2] == 1.0
    row = encoder.encode([None, "text", "yes"])
    assert all(math.isnan(v) for v in row)  # missing, and strings for numeric and boolean types


def test_numbers_round_to_float32_once_in_the_tensor() -> None:
    encoder = encoder_for(_spec(_feature("f", A.FEATURE_AGGREGATION_SUM)))
    (value,) = encoder.encode([0.1])
    assert np.array([value], dtype=np.float32)[0] == np.float32(0.1)


@pytest.mark.parametrize(
    ("unknown", "expected"),
    [(fpb.UNKNOWN_CATEGORY_ENCODING_UNSPECIFIED, math.nan), (fpb.UNKNOWN_CATEGORY_ENCODING_OTHER, 3.0)],
)
def test_categories_encode_as_their_index_and_unknowns_as_configured(
    unknown: fpb.UnknownCategoryEncoding.ValueType, expected: float
) -> None:
    feature = _feature(
        "stage",
        A.FEATURE_AGGREGATION_PERSON_PROPERTY,
        fpb.FEATURE_VALUE_TYPE_CATEGORY,
        categories=["new", "active", "lapsed"],
        unknown_category=unknown,
    )
    encoder = encoder_for(_spec(feature))
    assert encoder.encode(["active"]) == [1.0]
    assert encoder.encode(["lapsed"]) == [2.0]
    for outside in ("vip", 1.0, True):
        (code,) = encoder.encode([outside])
        assert code == expected or (math.isnan(code) and math.isnan(expected))
    assert math.isnan(encoder.encode([None])[0])  # missing stays missing whatever the unknown encoding


def test_typing_rules_name_each_bad_field() -> None:
    spec = _spec(
        _feature("a", A.FEATURE_AGGREGATION_LAST_VALUE),  # may be a string: type required
        _feature("b", A.FEATURE_AGGREGATION_SUM, fpb.FEATURE_VALUE_TYPE_CATEGORY, categories=["x"]),
        _feature("c", A.FEATURE_AGGREGATION_AVERAGE, fpb.FEATURE_VALUE_TYPE_INT),
        _feature("d", A.FEATURE_AGGREGATION_COUNT, categories=["x"]),
        _feature("e", A.FEATURE_AGGREGATION_FIRST_VALUE, fpb.FEATURE_VALUE_TYPE_CATEGORY),
        _feature(
            "f", A.FEATURE_AGGREGATION_FIRST_VALUE, fpb.FEATURE_VALUE_TYPE_CATEGORY, categories=["x", "", "x"]
        ),
    )
    fields = [v.field for v in spec_violations(spec, "feature_spec.")]
    assert fields == [
        "feature_spec.features[0].value_type",
        "feature_spec.features[1].value_type",
        "feature_spec.features[2].value_type",
        "feature_spec.features[3].categories",
        "feature_spec.features[4].categories",
        "feature_spec.features[5].categories[1]",
        "feature_spec.features[5].categories[2]",
    ]
    with pytest.raises(ValueError, match=r"features\[0\]\.value_type"):
        encoder_for(spec)


def test_protobuf_values_become_feature_values() -> None:
    assert python_value(struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)) is None
    assert python_value(struct_pb2.Value()) is None
    assert python_value(struct_pb2.Value(number_value=2.0)) == 2.0
    assert python_value(struct_pb2.Value(string_value="a")) == "a"
    assert python_value(struct_pb2.Value(bool_value=False)) is False
    listed = struct_pb2.Value()
    listed.list_value.extend([1, "a"])
    assert python_value(listed) == '[1.0,"a"]'
