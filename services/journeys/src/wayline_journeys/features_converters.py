"""FeatureSpec and GetProfileFeatures: protobuf → features.py with every bad field reported, and back.

`feature_spec`, `point_in_time_matcher` and `feature_value` serve ExportTrainingSet's converters too, so both
RPCs accept exactly the same specs. The typing rules (a value type that fits the aggregation, category labels)
are `wayline.common.feature_encoding.spec_violations`, the ones every service that accepts a spec applies; the
values themselves do not depend on the type, which only fixes how consumers encode them for a model.
"""

from __future__ import annotations

import re
from datetime import datetime

from google.protobuf import duration_pb2, struct_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.feature_encoding import spec_violations
from wayline.common.property_paths import EVENT_FIELDS, is_event_path, is_person_path
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters
from wayline_journeys.analytics import EventMatcher
from wayline_journeys.converters import checked_time
from wayline_journeys.features import (
    MAX_FEATURES,
    Aggregation,
    FeatureDefinition,
    FeatureSpec,
    FeatureValue,
    ProfileFeatures,
    ProfileQuery,
)
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.lifecycle_converters import lifecycle_model

__all__ = [
    "duration_us",
    "event_path_violation",
    "feature_spec",
    "feature_value",
    "point_in_time_matcher",
    "profile_query",
    "profile_response",
    "to_value",
]

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_AGGREGATIONS = {
    feature_pb2.FeatureAggregation.Value(f"FEATURE_AGGREGATION_{a.name}"): a for a in Aggregation
}


def duration_us(duration: duration_pb2.Duration) -> int:
    """The duration in whole microseconds (the store's time unit; finer parts are dropped)."""
    return duration.seconds * 1_000_000 + duration.nanos // 1_000


def event_path_violation(path: str, field: str) -> FieldViolation | None:
    """Why `path` is not an event property path (properties., context. or an event field), if it is not."""
    if path in EVENT_FIELDS or is_event_path(path):
        return None
    fields = ", ".join(sorted(EVENT_FIELDS))
    return FieldViolation(field, f"use properties.<key>..., context.<field>... or one of {fields}")


def point_in_time_matcher(
    message: analytics_pb2.EventMatcher, path: str, violations: list[FieldViolation]
) -> EventMatcher:
    """An event matcher without `person.` filters: those are evaluated as of now, which would leak the
    future into a point-in-time value."""
    for i, f in enumerate(message.property_filters):
        if f.property.startswith("person."):
            violations.append(
                FieldViolation(
                    f"{path}.property_filters[{i}].property",
                    "person. filters are read as of now, not as of the observation time; use a "
                    "FEATURE_AGGREGATION_PERSON_PROPERTY feature instead",
                )
            )
    return analytics_converters.event_matcher(message, path, violations)


def feature_value(value: struct_pb2.Value, path: str, violations: list[FieldViolation]) -> FeatureValue:
    found = analytics_converters.json_value(value)
    if isinstance(found, list | dict):
        violations.append(FieldViolation(path, "must be a number, a string, a boolean or null"))
        return None
    return found


def to_value(value: FeatureValue) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):  # before float: a bool is an int
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    return struct_pb2.Value(number_value=value)


def _definition(
    message: feature_pb2.FeatureDefinition, path: str, violations: list[FieldViolation]
) -> FeatureDefinition | None:
    found = len(violations)
    if not _NAME.match(message.name):
        violations.append(FieldViolation(f"{path}.name", "must be lower_snake_case, e.g. orders_30d"))
    aggregation = _AGGREGATIONS.get(message.aggregation)
    if aggregation is None:
        violations.append(FieldViolation(f"{path}.aggregation", "choose an aggregation", "REQUIRED"))
    events, window, model = EventMatcher(), None, None
    if (
        aggregation is Aggregation.LIFECYCLE_STAGE
    ):  # events, property and window: spec_violations refuses them
        model = _stage_model(message, f"{path}.lifecycle_model", violations)
    elif aggregation is not Aggregation.PERSON_PROPERTY:  # it ignores both, as the contract says
        events = point_in_time_matcher(message.events, f"{path}.events", violations)
        if message.HasField("window"):
            window = duration_us(message.window)
            if window <= 0:
                violations.append(FieldViolation(f"{path}.window", "must be positive", "OUT_OF_RANGE"))
    if aggregation is Aggregation.PERSON_PROPERTY and not is_person_path(message.property):
        violations.append(FieldViolation(f"{path}.property", "must be a person.<trait> path"))
    elif (
        aggregation is not None
        and aggregation.reads_property
        and aggregation is not Aggregation.PERSON_PROPERTY
    ):
        bad = event_path_violation(message.property, f"{path}.property")
        violations.extend([bad] if bad else [])
    elif (
        aggregation is not None
        and not aggregation.reads_property
        and aggregation is not Aggregation.LIFECYCLE_STAGE  # spec_violations says why
        and message.property
    ):
        violations.append(FieldViolation(f"{path}.property", f"{aggregation.name} reads no property"))
    default = feature_value(message.default_value, f"{path}.default_value", violations)
    if len(violations) > found or aggregation is None:
        return None
    return FeatureDefinition(message.name, aggregation, events, message.property, window, default, model)


def _stage_model(
    message: feature_pb2.FeatureDefinition, path: str, violations: list[FieldViolation]
) -> LifecycleModel | None:
    """The model of a LIFECYCLE_STAGE feature, converted as UpdateLifecycleModel converts one (its shape
    limits are spec_violations'); None when it is missing."""
    if not message.HasField("lifecycle_model"):
        return None
    return lifecycle_model(message.lifecycle_model, path, violations)


def feature_spec(
    message: feature_pb2.FeatureSpec, path: str, violations: list[FieldViolation]
) -> FeatureSpec:
    if not 0 < len(message.features) <= MAX_FEATURES:
        violations.append(FieldViolation(f"{path}.features", f"1 to {MAX_FEATURES} features", "OUT_OF_RANGE"))
    definitions, seen = [], set()
    for i, feature in enumerate(message.features[:MAX_FEATURES]):
        if feature.name in seen:
            violations.append(FieldViolation(f"{path}.features[{i}].name", "is used twice", "DUPLICATE"))
        seen.add(feature.name)
        definition = _definition(feature, f"{path}.features[{i}]", violations)
        if definition is not None:
            definitions.append(definition)
    violations.extend(spec_violations(message, f"{path}."))
    return FeatureSpec(message.name, message.version, tuple(definitions))


def profile_query(tenant: str, request: pb.GetProfileFeaturesRequest, now: datetime) -> ProfileQuery:
    violations: list[FieldViolation] = []
    person_id, identifier = "", None
    ref = request.person
    kind = ref.WhichOneof("ref")
    if kind == "person_id" and ref.person_id:
        person_id = ref.person_id
    elif kind == "identifier" and ref.identifier.type and ref.identifier.value:
        identifier = (ref.identifier.type, ref.identifier.value)
    else:
        violations.append(FieldViolation("person", "set a non-empty person_id or identifier", "REQUIRED"))
    if not request.HasField("spec"):
        violations.append(FieldViolation("spec", "the feature spec to compute", "REQUIRED"))
    spec = feature_spec(request.spec, "spec", violations)
    names = {f.name for f in request.spec.features}
    for i, name in enumerate(request.feature_names):
        if name not in names:
            violations.append(FieldViolation(f"feature_names[{i}]", f"the spec has no feature {name!r}"))
    as_of = now
    if request.HasField("as_of"):
        as_of = checked_time(request.as_of, "as_of", violations) or now  # an invalid one is raised below
    if violations:
        raise InvalidArgument("the features request is invalid; see the field violations", violations[:100])
    wanted = set(request.feature_names)
    return ProfileQuery(
        tenant=tenant,
        spec=spec,
        features=tuple(f for f in spec.features if not wanted or f.name in wanted),
        as_of_us=to_micros(as_of),
        person_id=person_id,
        identifier=identifier,
    )


def profile_response(query: ProfileQuery, found: ProfileFeatures) -> pb.GetProfileFeaturesResponse:
    vector = feature_pb2.FeatureVector(
        person_id=found.person_id,
        as_of=to_timestamp(from_micros(found.as_of_us)),
        spec_name=query.spec.name,
        spec_version=query.spec.version,
    )
    for name, value in found.values:
        vector.values[name].CopyFrom(to_value(value))
    return pb.GetProfileFeaturesResponse(features=vector)
