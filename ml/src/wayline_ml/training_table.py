"""The training table: the one input type of training, evaluation and export.

A row is one logged decision: who (person id), when (decision time, µs since the epoch), the features known at
that time, the action the logging policy chose, the probability with which it chose it, and what followed (the
response, converted 0/1, and its value). The journey generator and, later, the point-in-time export from the
journeys store produce it; everything in `wayline_ml` downstream reads only this.

Features are one float32 matrix whose columns the `FeatureSchema` (the feature spec, typed) names, in order,
encoded as `wayline.common.feature_encoding` says. Every type is carried as float32 because that is what
XGBoost and the exported ONNX model take; a missing value is NaN, for every type (XGBoost and ONNX's tree
ensembles both route NaN down each split's learned default branch, so training and serving treat it alike).
Categories are integer codes (0, 1, 2, …) held as floats; the trees split on them as ordered numbers, which
the ONNX tree operators support, unlike XGBoost's native categorical splits."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wayline.journeys.v1 import feature_pb2
from wayline_ml.feature_spec import FeatureSpecError, checked

__all__ = [
    "MISSING",
    "Feature",
    "FeatureSchema",
    "TrainingTable",
    "TrainingTableError",
    "ValueType",
]

MISSING = "nan"
"""How every feature encodes a missing value: IEEE NaN in the float32 matrix."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class TrainingTableError(ValueError):
    """The table breaks one of its invariants; the message names the column and the first bad row."""


class ValueType(enum.StrEnum):
    """What a feature column holds (the spec's FeatureValueType); all are stored as float32, NaN where
    missing."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"  # an integer code into the feature's `categories`


_VALUE_TYPES = {
    feature_pb2.FEATURE_VALUE_TYPE_UNSPECIFIED: ValueType.FLOAT,
    feature_pb2.FEATURE_VALUE_TYPE_FLOAT: ValueType.FLOAT,
    feature_pb2.FEATURE_VALUE_TYPE_INT: ValueType.INT,
    feature_pb2.FEATURE_VALUE_TYPE_BOOL: ValueType.BOOL,
    feature_pb2.FEATURE_VALUE_TYPE_CATEGORY: ValueType.CATEGORY,
}


@dataclass(frozen=True, slots=True)
class Feature:
    """One column of the feature matrix."""

    name: str
    type: ValueType
    categories: tuple[str, ...] = ()  # the labels of codes 0..n-1, for CATEGORY only
    unknown_code: bool = False  # CATEGORY: an unknown value has the code len(categories)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise TrainingTableError(f"feature name {self.name!r} is not a lower-case identifier")
        if (self.type is ValueType.CATEGORY) != bool(self.categories):
            raise TrainingTableError(f"feature {self.name!r}: categories are given exactly for CATEGORY")

    @property
    def codes(self) -> int:
        """How many category codes the column may hold."""
        return len(self.categories) + int(self.unknown_code)


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSchema:
    """The feature columns in matrix (and model input) order: the feature spec's features, typed."""

    spec: feature_pb2.FeatureSpec
    features: tuple[Feature, ...] = field(init=False)

    def __post_init__(self) -> None:
        try:
            checked(self.spec, f"feature spec {self.spec.name} {self.spec.version}")
        except FeatureSpecError as error:
            raise TrainingTableError(str(error)) from error
        features = tuple(
            Feature(
                f.name,
                _VALUE_TYPES[f.value_type],
                tuple(f.categories),
                f.unknown_category == feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER,
            )
            for f in self.spec.features
        )
        object.__setattr__(self, "features", features)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSchema) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec.SerializeToString(deterministic=True))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    def __len__(self) -> int:
        return len(self.features)

    def check_values(self, matrix: npt.NDArray[np.float32]) -> None:
        """Every non-missing value fits its column's type (ints whole, bools 0/1, codes in range)."""
        for index, feature in enumerate(self.features):
            column = matrix[:, index]
            present = column[~np.isnan(column)]
            if feature.type is ValueType.FLOAT:
                bad = ~np.isfinite(present)
            elif feature.type is ValueType.BOOL:
                bad = (present != 0) & (present != 1)
            else:
                bad = present != np.round(present)
                if feature.type is ValueType.CATEGORY:
                    bad |= (present < 0) | (present >= feature.codes)
            if bad.any():
                raise TrainingTableError(
                    f"feature {feature.name!r} ({feature.type.value}) holds {present[bad][0]!r}"
                )


@dataclass(frozen=True, slots=True, eq=False)
class TrainingTable:
    """Logged decisions, one per row, sorted by decision time; `validate()` checks the invariants."""

    schema: FeatureSchema
    actions: tuple[str, ...]  # the fixed action list; a row's action is one of these
    features: npt.NDArray[np.float32]  # (rows, len(schema)), NaN = missing
    person_id: npt.NDArray[np.str_]
    decision_time_us: npt.NDArray[np.int64]
    action: npt.NDArray[np.str_]
    propensity: npt.NDArray[np.float64]  # P(logging policy chose `action` | the row), in (0, 1]
    converted: npt.NDArray[np.int8]  # the observed response, 0 or 1
    value: npt.NDArray[np.float64]  # the response's value; 0 where not converted

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def action_index(self) -> npt.NDArray[np.int64]:
        """Each row's action as an index into `actions`."""
        lookup = {action: index for index, action in enumerate(self.actions)}
        return np.fromiter((lookup[action] for action in self.action), np.int64, len(self))

    def reward(self) -> npt.NDArray[np.float64]:
        """What the policy is judged on: the value realised by the row's response."""
        return self.converted.astype(np.float64) * self.value

    def take(self, rows: npt.NDArray[np.int64] | slice) -> TrainingTable:
        """The same table restricted to some rows (for the time split)."""
        return TrainingTable(
            schema=self.schema,
            actions=self.actions,
            features=self.features[rows],
            person_id=self.person_id[rows],
            decision_time_us=self.decision_time_us[rows],
            action=self.action[rows],
            propensity=self.propensity[rows],
            converted=self.converted[rows],
            value=self.value[rows],
        )

    def validate(self) -> TrainingTable:
        """Raise `TrainingTableError` naming the first broken invariant; return self when all hold."""
        if len(set(self.actions)) != len(self.actions) or len(self.actions) < 2:
            raise TrainingTableError(f"actions must be at least two distinct names, got {self.actions}")
        if self.features.dtype != np.float32 or self.features.ndim != 2:
            raise TrainingTableError(f"features must be a 2-D float32 matrix, got {self.features.dtype}")
        if self.features.shape[1] != len(self.schema):
            raise TrainingTableError(
                f"features has {self.features.shape[1]} columns, the schema names {len(self.schema)}"
            )
        columns = ("person_id", "decision_time_us", "action", "propensity", "converted", "value")
        for column in columns:
            if len(getattr(self, column)) != len(self):
                raise TrainingTableError(
                    f"{column} has {len(getattr(self, column))} rows, features {len(self)}"
                )
        self.schema.check_values(self.features)
        _first_bad("decision_time_us", np.diff(self.decision_time_us) < 0, "decreases (rows must be sorted)")
        _first_bad("action", ~np.isin(self.action, np.array(self.actions)), "is not in the action list")
        outside = ~((self.propensity > 0) & (self.propensity <= 1))
        _first_bad("propensity", outside, "is outside (0, 1]")
        _first_bad("converted", (self.converted != 0) & (self.converted != 1), "is not 0 or 1")
        _first_bad("value", ~np.isfinite(self.value), "is not finite")
        _first_bad("value", (self.converted == 0) & (self.value != 0), "is non-zero without a conversion")
        return self


def _first_bad(column: str, bad: npt.NDArray[np.bool_], problem: str) -> None:
    if bad.any():
        raise TrainingTableError(f"{column} at row {int(np.argmax(bad))} {problem}")
