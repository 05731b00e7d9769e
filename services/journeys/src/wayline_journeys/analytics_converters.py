"""Protobuf → the analytics vocabulary (analytics.py), with validation.

Each function appends what is wrong to a list of FieldViolations under the field path it is given, so a
request converter reports every bad field of a request at once (INVALID_ARGUMENT with a BadRequest).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from google.protobuf import struct_pb2

from wayline.common.errors import FieldViolation
from wayline.common.filter_times import rfc3339_time
from wayline.common.property_paths import EVENT_FIELDS, is_event_path, is_person_path
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2
from wayline_journeys.analytics import (
    Breakdown,
    BreakdownDimension,
    EventMatcher,
    FilterOperator,
    JsonValue,
    Population,
    PropertyFilter,
    TimeRange,
)
from wayline_journeys.converters import channel_names, event_type_name, time_bounds

__all__ = [
    "MAX_BREAKDOWN_LIMIT",
    "MAX_BREAKDOWN_SEGMENTS",
    "MAX_POPULATION_SEGMENTS",
    "NUMERIC_PATH_HINT",
    "SEGMENT_NAME",
    "breakdown",
    "event_matcher",
    "json_value",
    "numeric_event_path",
    "population",
    "property_filter",
    "time_range",
]

MAX_BREAKDOWN_LIMIT = 100
MAX_BREAKDOWN_SEGMENTS = 20
# A population's segments: each is one more subquery of every analytics query, and the store refuses a query
# past 256 KiB (ClickHouse's max_query_size), so a population of thousands failed as an internal error.
MAX_POPULATION_SEGMENTS = 20
# A population's person filters. They share one read of the identify events, one pair of columns per trait
# (matching.person_filters_sql): a funnel of an empty tenant took 0.2 s with none, 0.5 s with 20 and 1 s with
# 100 (2.9 s with 20 and 54 s with 200 when each filter read the events itself). The contract states 20.
MAX_POPULATION_PERSON_FILTERS = 20
# `segments/{segment_id}`: the id as CreateSegmentRequest.segment_id takes it (lower-kebab-case, 3 to 63).
SEGMENT_NAME = re.compile(r"segments/([a-z][a-z0-9-]{1,61}[a-z0-9])")

_OPERATORS = {
    analytics_pb2.FILTER_OPERATOR_EQUALS: FilterOperator.EQUALS,
    analytics_pb2.FILTER_OPERATOR_NOT_EQUALS: FilterOperator.NOT_EQUALS,
    analytics_pb2.FILTER_OPERATOR_CONTAINS: FilterOperator.CONTAINS,
    analytics_pb2.FILTER_OPERATOR_NOT_CONTAINS: FilterOperator.NOT_CONTAINS,
    analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX: FilterOperator.MATCHES_REGEX,
    analytics_pb2.FILTER_OPERATOR_GREATER_THAN: FilterOperator.GREATER_THAN,
    analytics_pb2.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL: FilterOperator.GREATER_THAN_OR_EQUAL,
    analytics_pb2.FILTER_OPERATOR_LESS_THAN: FilterOperator.LESS_THAN,
    analytics_pb2.FILTER_OPERATOR_LESS_THAN_OR_EQUAL: FilterOperator.LESS_THAN_OR_EQUAL,
    analytics_pb2.FILTER_OPERATOR_IS_SET: FilterOperator.IS_SET,
    analytics_pb2.FILTER_OPERATOR_IS_NOT_SET: FilterOperator.IS_NOT_SET,
}
_NO_VALUES = (FilterOperator.IS_SET, FilterOperator.IS_NOT_SET)
_ONE_VALUE = (
    FilterOperator.MATCHES_REGEX,
    FilterOperator.GREATER_THAN,
    FilterOperator.GREATER_THAN_OR_EQUAL,
    FilterOperator.LESS_THAN,
    FilterOperator.LESS_THAN_OR_EQUAL,
)


def _property_path(path: str) -> bool:
    return is_event_path(path) or is_person_path(path)


def numeric_event_path(path: str) -> bool:
    """A path whose values may be numbers: a numeric event field (`revenue`, `sentiment_score`) or a path
    into properties or context (not `person.`, not a text field such as `name`)."""
    if path in EVENT_FIELDS:
        return EVENT_FIELDS[path]
    return is_event_path(path)


NUMERIC_PATH_HINT = (
    "a numeric event property: revenue, sentiment_score, properties.<key>..., context.<field>..."
)


def json_value(value: struct_pb2.Value) -> JsonValue | list[object] | dict[str, object]:
    """The scalar a protobuf Value holds (None for null or unset); a list or a struct comes back as a list,
    for the caller to report (no filter or feature compares with one)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind in (None, "null_value"):
        return None
    return []  # lists and structs are not comparable values; the caller reports them


def property_filter(
    message: analytics_pb2.PropertyFilter, path: str, violations: list[FieldViolation]
) -> PropertyFilter | None:
    """The filter, or None after recording why it is unusable."""
    found = len(violations)
    if not (message.property in EVENT_FIELDS or _property_path(message.property)):
        violations.append(
            FieldViolation(
                f"{path}.property",
                "use properties.<key>[.<key>...], context.<field>..., person.<trait>, or one of "
                f"{', '.join(sorted(EVENT_FIELDS))}",
            )
        )
    operator = _OPERATORS.get(message.operator)
    values: list[JsonValue] = []
    for i, raw in enumerate(message.values):
        value = json_value(raw)
        if isinstance(value, list | dict):
            violations.append(FieldViolation(f"{path}.values[{i}]", "lists and objects cannot be compared"))
        else:
            values.append(value)
    if operator is None:
        violations.append(FieldViolation(f"{path}.operator", "choose an operator", "REQUIRED"))
    elif operator in _NO_VALUES and values:
        violations.append(FieldViolation(f"{path}.values", f"{operator.name} takes no values"))
    elif operator in _ONE_VALUE and len(message.values) != 1:
        violations.append(FieldViolation(f"{path}.values", f"{operator.name} takes exactly one value"))
    elif operator not in _NO_VALUES and operator not in _ONE_VALUE and not message.values:
        violations.append(FieldViolation(f"{path}.values", f"{operator.name} needs at least one value"))
    elif operator in _ONE_VALUE and operator is not FilterOperator.MATCHES_REGEX:
        only = values[0] if values else None
        # A real time, not only its shape: the store compiles the bound to a DateTime64 and cannot take
        # February 30, which would otherwise fail there as an internal error (or a segment marked FAILED).
        if isinstance(only, bool) or not (
            isinstance(only, float) or (isinstance(only, str) and rfc3339_time(only) is not None)
        ):
            violations.append(
                FieldViolation(f"{path}.values[0]", "must be a number or an RFC 3339 time (quoted)")
            )
    elif operator is FilterOperator.MATCHES_REGEX and not isinstance(values[0] if values else None, str):
        violations.append(FieldViolation(f"{path}.values[0]", "must be a regular expression (a string)"))
    if len(violations) > found or operator is None:
        return None
    return PropertyFilter(message.property, operator, tuple(values))


def event_matcher(
    message: analytics_pb2.EventMatcher, path: str, violations: list[FieldViolation]
) -> EventMatcher:
    channels = channel_names(message.channels, f"{path}.channels", violations)
    filters = [
        property_filter(f, f"{path}.property_filters[{i}]", violations)
        for i, f in enumerate(message.property_filters)
    ]
    return EventMatcher(
        name=message.event_name,
        type=event_type_name(message.event_type, f"{path}.event_type", violations),
        channels=channels,
        filters=tuple(f for f in filters if f is not None),
    )


def population(message: analytics_pb2.Population, path: str, violations: list[FieldViolation]) -> Population:
    if len(message.segments) > MAX_POPULATION_SEGMENTS:
        violations.append(
            FieldViolation(f"{path}.segments", f"at most {MAX_POPULATION_SEGMENTS} segments", "OUT_OF_RANGE")
        )
    else:
        violations.extend(
            FieldViolation(f"{path}.segments[{i}]", "must be segments/{segment_id}")
            for i, name in enumerate(message.segments)
            if not SEGMENT_NAME.fullmatch(name)
        )
    filters = []
    if len(message.person_filters) > MAX_POPULATION_PERSON_FILTERS:
        violations.append(
            FieldViolation(
                f"{path}.person_filters",
                f"at most {MAX_POPULATION_PERSON_FILTERS} person filters",
                "OUT_OF_RANGE",
            )
        )
    for i, f in enumerate(message.person_filters):
        converted = property_filter(f, f"{path}.person_filters[{i}]", violations)
        if converted is not None and not converted.on_person:
            violations.append(
                FieldViolation(f"{path}.person_filters[{i}].property", "must be a person. path")
            )
        elif converted is not None:
            filters.append(converted)
    return Population(segments=tuple(message.segments), person_filters=tuple(filters))


def breakdown(message: analytics_pb2.Breakdown, path: str, violations: list[FieldViolation]) -> Breakdown:
    dimension = {
        analytics_pb2.BREAKDOWN_DIMENSION_UNSPECIFIED: BreakdownDimension.NONE,
        analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL: BreakdownDimension.CHANNEL,
        analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY: BreakdownDimension.PROPERTY,
        analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT: BreakdownDimension.SEGMENT,
    }.get(message.dimension, BreakdownDimension.NONE)
    if dimension is BreakdownDimension.PROPERTY and not (
        message.property in EVENT_FIELDS or _property_path(message.property)
    ):
        violations.append(
            FieldViolation(f"{path}.property", "a property path is required for this dimension")
        )
    if dimension is BreakdownDimension.SEGMENT:
        violations.extend(_breakdown_segments(message.segments, f"{path}.segments"))
    if not 0 <= message.limit <= MAX_BREAKDOWN_LIMIT:
        violations.append(FieldViolation(f"{path}.limit", f"0 to {MAX_BREAKDOWN_LIMIT}", "OUT_OF_RANGE"))
    return Breakdown(
        dimension=dimension,
        property=message.property,
        segments=tuple(message.segments),
        limit=message.limit or 10,
    )


def _breakdown_segments(names: Sequence[str], path: str) -> list[FieldViolation]:
    """What is wrong with a breakdown's segments: 1 to MAX_BREAKDOWN_SEGMENTS names, each `segments/{id}`
    and listed once (a series per segment, so a repeat would be a second series of the same persons)."""
    if not 0 < len(names) <= MAX_BREAKDOWN_SEGMENTS:
        return [FieldViolation(path, f"1 to {MAX_BREAKDOWN_SEGMENTS} segments", "OUT_OF_RANGE")]
    found = [
        FieldViolation(f"{path}[{i}]", "must be segments/{segment_id}")
        for i, name in enumerate(names)
        if not SEGMENT_NAME.fullmatch(name)
    ]
    found += [
        FieldViolation(f"{path}[{i}]", f"{name} is listed twice", "DUPLICATE")
        for i, name in enumerate(names)
        if name in names[:i] and SEGMENT_NAME.fullmatch(name)
    ]
    return found


def time_range(message: event_pb2.TimeRange, path: str, violations: list[FieldViolation]) -> TimeRange:
    return TimeRange(*time_bounds(message, path, violations))
