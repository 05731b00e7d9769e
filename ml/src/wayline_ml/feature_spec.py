"""Feature specs as data: `wayline.journeys.v1.FeatureSpec` read from a YAML or JSON file (its proto3 JSON
form), checked, and written back as compact JSON for model packages and training runs.

The spec is the one definition of a model's features (DESIGN.md, "One feature definition"): journeys
computes it point in time for training sets (ExportTrainingSet), the decision service incrementally online,
and `wayline.common.feature_encoding` turns its values into model inputs on both sides. Nothing here
computes a feature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from google.protobuf import json_format

from wayline.common.feature_encoding import spec_violations
from wayline.journeys.v1 import feature_pb2

__all__ = [
    "DEFAULT_SPEC_FILE",
    "FeatureSpecError",
    "checked",
    "declared_spec",
    "default_spec",
    "load_spec",
    "spec_from_json",
    "spec_json",
]

DEFAULT_SPEC_FILE = Path(__file__).parent / "specs" / "next_best_offer.yaml"
MAX_FEATURES = 500


class FeatureSpecError(ValueError):
    """A spec file does not parse or breaks the contract's rules; the message names the field."""


def load_spec(path: Path) -> feature_pb2.FeatureSpec:
    """The spec in `path` (`.yaml`, `.yml` or `.json`), checked."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise FeatureSpecError(f"{path}: not YAML or JSON: {error}") from error
    if not isinstance(document, dict):
        raise FeatureSpecError(f"{path}: a feature spec is a mapping with name, version and features")
    try:
        spec = json_format.ParseDict(document, feature_pb2.FeatureSpec())
    except json_format.ParseError as error:
        raise FeatureSpecError(f"{path}: {error}") from error
    return checked(spec, str(path))


def default_spec() -> feature_pb2.FeatureSpec:
    """The next-best-offer spec that ships with `wayline_ml` (specs/next_best_offer.yaml)."""
    return load_spec(DEFAULT_SPEC_FILE)


def checked(spec: feature_pb2.FeatureSpec, where: str) -> feature_pb2.FeatureSpec:
    """`spec` when it has a name, a version, 1 to 500 uniquely named features and valid types."""
    problems = [f"{v.field}: {v.description}" for v in spec_violations(spec)]
    if not spec.name or not spec.version:
        problems.append("name and version are required")
    names = [feature.name for feature in spec.features]
    if not 0 < len(names) <= MAX_FEATURES:
        problems.append(f"{len(names)} features; 1 to {MAX_FEATURES}")
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"feature names repeat: {repeated}")
    if problems:
        raise FeatureSpecError(f"{where}: " + "; ".join(problems))
    return spec


_DECLARED_TYPES = {
    "float": feature_pb2.FEATURE_VALUE_TYPE_FLOAT,
    "int": feature_pb2.FEATURE_VALUE_TYPE_INT,
    "bool": feature_pb2.FEATURE_VALUE_TYPE_BOOL,
    "category": feature_pb2.FEATURE_VALUE_TYPE_CATEGORY,
}


def declared_spec(
    name: str, version: str, columns: Sequence[tuple[str, str] | tuple[str, str, Sequence[str]]]
) -> feature_pb2.FeatureSpec:
    """A spec for columns computed outside the store (a table made in code, such as a synthetic one): each
    column is declared as a person property of its own name (`person.<name>`) with its value type (`float`,
    `int`, `bool` or `category`, the latter with its labels), so a table made in code still carries a typed
    spec. Features computed from journeys belong in a spec file instead."""
    features = []
    for column in columns:
        column_name, value_type = column[0], str(column[1])
        labels = list(column[2]) if len(column) == 3 else []
        features.append(
            feature_pb2.FeatureDefinition(
                name=column_name,
                aggregation=feature_pb2.FEATURE_AGGREGATION_PERSON_PROPERTY,
                property=f"person.{column_name}",
                value_type=_DECLARED_TYPES[value_type],
                categories=labels,
            )
        )
    return checked(feature_pb2.FeatureSpec(name=name, version=version, features=features), name)


def spec_json(spec: feature_pb2.FeatureSpec) -> str:
    """The spec's compact proto3 JSON, with keys in a fixed order (the same spec gives the same text)."""
    return json.dumps(json_format.MessageToDict(spec), separators=(",", ":"), sort_keys=True)


def spec_from_json(text: str) -> feature_pb2.FeatureSpec:
    """The spec `spec_json` wrote."""
    try:
        return json_format.Parse(text, feature_pb2.FeatureSpec())
    except json_format.ParseError as error:
        raise FeatureSpecError(f"feature spec JSON: {error}") from error
