"""How a feature value becomes a model input: the one implementation of the encoding the contract states on
`wayline.journeys.v1.FeatureValueType`, shared by every side that feeds a model (the ML pipeline encoding
ExportTrainingSet rows, the decision service encoding online values), so that training and serving cannot
encode a value differently.

Values are what the feature computations give once `default_value` is applied: a number, a string, a
boolean or None (missing). Each encodes to one number; consumers put it in a float32 tensor (numpy's and
ONNX Runtime's float32 conversion rounds to nearest, the same everywhere). Missing is NaN, which XGBoost and
ONNX tree ensembles route down the branch learned for missing values.

`spec_violations` holds the typing rules a spec must follow (a value type that fits the aggregation,
category labels only and always for categories) and the shape of a lifecycle-stage feature (a model, and
only the conditions both the store and the online state compute), for every service that accepts a spec.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import json_format, struct_pb2

from wayline.common.errors import FieldViolation
from wayline.journeys.v1 import condition_pb2, feature_pb2

__all__ = [
    "MAX_CATEGORIES",
    "FeatureEncoder",
    "FeatureValue",
    "encoder_for",
    "python_value",
    "spec_violations",
]

MAX_CATEGORIES = 1000
NAN = math.nan

FeatureValue = float | int | str | bool | None

_Aggregation = feature_pb2.FeatureAggregation
_Type = feature_pb2.FeatureValueType
_MAY_BE_STRING = frozenset(
    {
        _Aggregation.FEATURE_AGGREGATION_FIRST_VALUE,
        _Aggregation.FEATURE_AGGREGATION_LAST_VALUE,
        _Aggregation.FEATURE_AGGREGATION_PERSON_PROPERTY,
    }
)
_WHOLE_NUMBERS = frozenset(
    {
        _Aggregation.FEATURE_AGGREGATION_COUNT,
        _Aggregation.FEATURE_AGGREGATION_COUNT_DISTINCT,
        _Aggregation.FEATURE_AGGREGATION_ACTIVE_DAYS,
        _Aggregation.FEATURE_AGGREGATION_LIFECYCLE_STAGE,
    }
)
_STAGE_CONDITIONS = ("group", "event_count", "person_property")
"""The conditions a lifecycle-stage feature's model may use: computable at any time from events alone."""


# Module constants: an attribute of a protobuf enum wrapper is a Python-level lookup, and these are read once
# per feature value on Decide's hot path.
_CATEGORY = int(_Type.FEATURE_VALUE_TYPE_CATEGORY)
_BOOL = int(_Type.FEATURE_VALUE_TYPE_BOOL)
_NUMBERS = (int, float)


@dataclass(frozen=True, slots=True)
class _Encoding:
    value_type: int
    codes: dict[str, int]
    unknown: float  # the code of a category outside the labels (NaN or len(labels))

    def encode(self, value: FeatureValue) -> float:
        if value is None:
            return NAN
        if self.value_type == _CATEGORY:
            if isinstance(value, str):
                code = self.codes.get(value)
                return self.unknown if code is None else float(code)
            return self.unknown
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, _NUMBERS):
            if self.value_type == _BOOL:
                return NAN if math.isnan(value) else (1.0 if value != 0 else 0.0)
            return float(value)
        return NAN


@dataclass(frozen=True)
class FeatureEncoder:
    """Encodes a spec's values, in spec order, into model inputs."""

    names: tuple[str, ...]
    _encodings: tuple[_Encoding, ...]

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, values: Sequence[FeatureValue]) -> list[float]:
        """One row: a number per feature (NaN for missing). `values` must be in spec order."""
        if len(values) != len(self._encodings):
            raise ValueError(f"{len(values)} values for {len(self._encodings)} features")
        return [encoding.encode(value) for encoding, value in zip(self._encodings, values, strict=True)]

    def encode_one(self, index: int, value: FeatureValue) -> float:
        """The encoding of feature `index`'s value."""
        return self._encodings[index].encode(value)


def encoder_for(spec: feature_pb2.FeatureSpec) -> FeatureEncoder:
    """The spec's encoder; raises ValueError naming the first typing violation (see `spec_violations`)."""
    violations = spec_violations(spec)
    if violations:
        first = violations[0]
        raise ValueError(f"{first.field}: {first.description}")
    encodings = []
    for feature in spec.features:
        value_type = effective_type(feature)
        unknown = (
            float(len(feature.categories))
            if feature.unknown_category == feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER
            else NAN
        )
        codes = {label: i for i, label in enumerate(feature.categories)}
        encodings.append(_Encoding(value_type, codes, unknown))
    return FeatureEncoder(tuple(f.name for f in spec.features), tuple(encodings))


def effective_type(feature: feature_pb2.FeatureDefinition) -> int:
    """The feature's value type, FLOAT when unset (valid only for aggregations that give numbers)."""
    if feature.value_type == _Type.FEATURE_VALUE_TYPE_UNSPECIFIED:
        return int(_Type.FEATURE_VALUE_TYPE_FLOAT)
    return int(feature.value_type)


def spec_violations(spec: feature_pb2.FeatureSpec, prefix: str = "") -> list[FieldViolation]:
    """The typing rules of every feature of `spec` (field paths under `prefix`, e.g. `feature_spec.`):
    - FIRST_VALUE, LAST_VALUE and PERSON_PROPERTY (whose values may be strings) need a value type;
    - CATEGORY only for those, with 1 to MAX_CATEGORIES distinct non-empty labels;
    - labels and an unknown-category encoding only for CATEGORY;
    - the value type and encoding are known enum values;
    - LIFECYCLE_STAGE has a lifecycle model (and no events, property or window), whose conditions are event
      counts without `person.` filters and person properties, in groups; no other aggregation has a model.
    Each service still converts the model's conditions with its own checks (operators, values, paths)."""
    violations: list[FieldViolation] = []
    for i, feature in enumerate(spec.features):
        path = f"{prefix}features[{i}]"
        if feature.value_type not in _Type.values():
            violations.append(
                FieldViolation(f"{path}.value_type", f"unknown value type {feature.value_type}")
            )
            continue
        if feature.unknown_category not in feature_pb2.UnknownCategoryEncoding.values():
            violations.append(
                FieldViolation(
                    f"{path}.unknown_category", f"unknown category encoding {feature.unknown_category}"
                )
            )
        if feature.aggregation not in _Aggregation.values():
            # The services' converters refuse it (`choose an aggregation`); the rules below would name it
            # with the enum's Name(), which raised ValueError for a number the contract does not define.
            continue
        may_be_string = feature.aggregation in _MAY_BE_STRING
        is_category = feature.value_type == _Type.FEATURE_VALUE_TYPE_CATEGORY
        if feature.value_type == _Type.FEATURE_VALUE_TYPE_UNSPECIFIED and may_be_string:
            violations.append(
                FieldViolation(
                    f"{path}.value_type",
                    f"required for {_Aggregation.Name(feature.aggregation)}, whose values may be strings: "
                    "say FLOAT, INT, BOOL or CATEGORY",
                )
            )
        if is_category and not may_be_string:
            violations.append(
                FieldViolation(
                    f"{path}.value_type",
                    f"{_Aggregation.Name(feature.aggregation)} gives numbers; CATEGORY is only for "
                    "FIRST_VALUE, LAST_VALUE and PERSON_PROPERTY",
                )
            )
        if (
            feature.value_type == _Type.FEATURE_VALUE_TYPE_INT
            and feature.aggregation not in _WHOLE_NUMBERS
            and not may_be_string
        ):
            violations.append(
                FieldViolation(
                    f"{path}.value_type",
                    f"{_Aggregation.Name(feature.aggregation)} gives fractional numbers; use FLOAT",
                )
            )
        violations += _category_violations(feature, path, is_category)
        violations += _lifecycle_violations(feature, path)
    return violations


def _lifecycle_violations(feature: feature_pb2.FeatureDefinition, path: str) -> list[FieldViolation]:
    if feature.aggregation != _Aggregation.FEATURE_AGGREGATION_LIFECYCLE_STAGE:
        if feature.HasField("lifecycle_model"):
            return [FieldViolation(f"{path}.lifecycle_model", "only a LIFECYCLE_STAGE feature has a model")]
        return []
    set_fields = {
        "events": feature.HasField("events"),
        "property": bool(feature.property),
        "window": feature.HasField("window"),
    }
    found = [
        FieldViolation(f"{path}.{name}", "LIFECYCLE_STAGE reads the model's conditions only; leave it unset")
        for name, is_set in set_fields.items()
        if is_set
    ]
    model = feature.lifecycle_model
    if not feature.HasField("lifecycle_model") or not model.stages:
        found.append(
            FieldViolation(
                f"{path}.lifecycle_model",
                "a LIFECYCLE_STAGE feature needs its lifecycle model (GetLifecycleModel gives the tenant's)",
                "REQUIRED",
            )
        )
    for i, definition in enumerate(model.stages):
        found += _stage_condition_violations(
            definition.condition, f"{path}.lifecycle_model.stages[{i}].condition"
        )
    return found


def _stage_condition_violations(condition: condition_pb2.PersonCondition, path: str) -> list[FieldViolation]:
    kind = condition.WhichOneof("condition")
    if kind is None:
        return []  # the service's own conversion names the missing condition
    if kind not in _STAGE_CONDITIONS:
        return [
            FieldViolation(
                f"{path}.{kind}",
                "a lifecycle-stage feature's model may use event_count, person_property and group conditions "
                "only: the others cannot be computed at any past time from the events alone",
            )
        ]
    if kind == "group":
        found = []
        for j, inner in enumerate(condition.group.conditions):
            found += _stage_condition_violations(inner, f"{path}.group.conditions[{j}]")
        return found
    if kind == "event_count":
        return [
            FieldViolation(
                f"{path}.event_count.event.property_filters[{j}].property",
                "person. filters are read as of now in a feature; put a person_property condition beside the "
                "event count in a group instead",
            )
            for j, f in enumerate(condition.event_count.event.property_filters)
            if f.property.startswith("person.")
        ]
    return []


def _category_violations(
    feature: feature_pb2.FeatureDefinition, path: str, is_category: bool
) -> list[FieldViolation]:
    labels = list(feature.categories)
    if not is_category:
        found = []
        if labels:
            found.append(FieldViolation(f"{path}.categories", "only a CATEGORY feature has categories"))
        if feature.unknown_category != feature_pb2.UNKNOWN_CATEGORY_ENCODING_UNSPECIFIED:
            found.append(
                FieldViolation(f"{path}.unknown_category", "only a CATEGORY feature has an unknown encoding")
            )
        return found
    if not labels:
        return [FieldViolation(f"{path}.categories", "a CATEGORY feature needs its category labels")]
    if len(labels) > MAX_CATEGORIES:
        return [FieldViolation(f"{path}.categories", f"{len(labels)} labels; at most {MAX_CATEGORIES}")]
    found = []
    seen: set[str] = set()
    for j, label in enumerate(labels):
        if not label:
            found.append(FieldViolation(f"{path}.categories[{j}]", "a label must not be empty"))
        elif label in seen:
            found.append(FieldViolation(f"{path}.categories[{j}]", f"{label!r} repeats"))
        seen.add(label)
    return found


def python_value(value: struct_pb2.Value) -> FeatureValue:
    """A `google.protobuf.Value` as a feature value: null → None, numbers → float, strings, booleans; a list
    or an object → its compact JSON text (as the store gives FIRST/LAST_VALUE of such values)."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return json.dumps(json_format.MessageToDict(value), separators=(",", ":"))
