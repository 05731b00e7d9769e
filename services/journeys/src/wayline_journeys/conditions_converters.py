"""Protobuf PersonCondition trees → conditions.py, with validation.

Like analytics_converters, each function appends what is wrong to a list of FieldViolations under the path it
is given. A condition naming a segment is accepted only where the caller says so: segments take them, and
lifecycle models refuse them (reason SEGMENT_IN_LIFECYCLE_MODEL), since segments may refer to lifecycle
stages and the two would make a cycle. `raise_for` answers INVALID_ARGUMENT with every violation.
Customer-value conditions are accepted only where the caller says so (segments: they are evaluated at one
time, and lifecycle distributions need many).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from google.protobuf import duration_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import duration_violation
from wayline.journeys.v1 import condition_pb2, customer_value_pb2, lifecycle_stage_pb2
from wayline_journeys.analytics_converters import (
    NUMERIC_PATH_HINT,
    SEGMENT_NAME,
    event_matcher,
    numeric_event_path,
    property_filter,
)
from wayline_journeys.conditions import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_SEQUENCE_STEPS,
    Aggregation,
    Comparison,
    Condition,
    CustomerValue,
    EventAggregate,
    EventCount,
    Group,
    HasIdentifierType,
    InLifecycleStage,
    InSegment,
    LifecycleStage,
    Logical,
    Not,
    PersonProperty,
    Sequence,
    ValueMetric,
)
from wayline_journeys.customer_value import RfmSegment

__all__ = [
    "MAX_WINDOW",
    "SEGMENT_IN_LIFECYCLE_MODEL",
    "SEGMENT_NAME",
    "duration",
    "lifecycle_stage",
    "person_condition",
    "raise_for",
]

SEGMENT_IN_LIFECYCLE_MODEL = "SEGMENT_IN_LIFECYCLE_MODEL"
MAX_WINDOW = timedelta(days=36_500)
_MAX_REPORTED_VIOLATIONS = 100

_COMPARISONS = {
    condition_pb2.COMPARISON_OPERATOR_UNSPECIFIED: Comparison.GREATER_THAN_OR_EQUAL,
    condition_pb2.COMPARISON_OPERATOR_EQUAL: Comparison.EQUAL,
    condition_pb2.COMPARISON_OPERATOR_NOT_EQUAL: Comparison.NOT_EQUAL,
    condition_pb2.COMPARISON_OPERATOR_GREATER_THAN: Comparison.GREATER_THAN,
    condition_pb2.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL: Comparison.GREATER_THAN_OR_EQUAL,
    condition_pb2.COMPARISON_OPERATOR_LESS_THAN: Comparison.LESS_THAN,
    condition_pb2.COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL: Comparison.LESS_THAN_OR_EQUAL,
}
_METRICS = {
    condition_pb2.CUSTOMER_VALUE_METRIC_HISTORIC_VALUE: ValueMetric.HISTORIC_VALUE,
    condition_pb2.CUSTOMER_VALUE_METRIC_PURCHASE_COUNT: ValueMetric.PURCHASE_COUNT,
    condition_pb2.CUSTOMER_VALUE_METRIC_RFM_SEGMENT: ValueMetric.RFM_SEGMENT,
}
_AGGREGATIONS = {
    condition_pb2.EVENT_AGGREGATION_SUM: Aggregation.SUM,
    condition_pb2.EVENT_AGGREGATION_AVERAGE: Aggregation.AVERAGE,
    condition_pb2.EVENT_AGGREGATION_MINIMUM: Aggregation.MINIMUM,
    condition_pb2.EVENT_AGGREGATION_MAXIMUM: Aggregation.MAXIMUM,
}
_RFM_SEGMENTS = {customer_value_pb2.RfmSegment.Value(f"RFM_SEGMENT_{s.name}"): s for s in RfmSegment}
_CURRENCY = re.compile(r"[A-Z]{3}")
_LOGICAL = {
    condition_pb2.LOGICAL_OPERATOR_UNSPECIFIED: Logical.AND,
    condition_pb2.LOGICAL_OPERATOR_AND: Logical.AND,
    condition_pb2.LOGICAL_OPERATOR_OR: Logical.OR,
}


def raise_for(violations: list[FieldViolation], what: str) -> None:
    """INVALID_ARGUMENT naming the first violations; nothing when there are none."""
    if violations:
        raise InvalidArgument(
            f"{what} is invalid; see the field violations", violations[:_MAX_REPORTED_VIOLATIONS]
        )


def lifecycle_stage(value: int, path: str, violations: list[FieldViolation]) -> LifecycleStage | None:
    if (
        value == lifecycle_stage_pb2.LIFECYCLE_STAGE_UNSPECIFIED
        or value not in LifecycleStage._value2member_map_
    ):
        violations.append(FieldViolation(path, "choose a lifecycle stage", "REQUIRED"))
        return None
    return LifecycleStage(value)


def duration(message: duration_pb2.Duration, path: str, violations: list[FieldViolation]) -> timedelta | None:
    """A positive duration of at most MAX_WINDOW, whole microseconds (finer parts are dropped)."""
    # Not a Duration at all first: the timedelta of seconds far outside Duration's range overflows.
    nanos = message.seconds * 1_000_000_000 + message.nanos
    if (
        duration_violation(message, path) is not None
        or (span := timedelta(microseconds=nanos // 1000)) <= timedelta(0)
        or span > MAX_WINDOW
    ):
        violations.append(FieldViolation(path, f"must be positive and at most {MAX_WINDOW.days} days"))
        return None
    return span


def _shape(message: condition_pb2.PersonCondition, depth: int = 1) -> tuple[int, int]:
    """(depth, number of conditions) of the tree, groups included."""
    if message.WhichOneof("condition") != "group":
        return depth, 1
    deepest, count = depth, 1
    for inner in message.group.conditions:
        inner_depth, inner_count = _shape(inner, depth + 1)
        deepest, count = max(deepest, inner_depth), count + inner_count
    return deepest, count


@dataclass(frozen=True)
class _Allowed:
    lifecycle_stages: bool
    segments: bool
    customer_values: bool


def person_condition(
    message: condition_pb2.PersonCondition,
    path: str,
    violations: list[FieldViolation],
    *,
    lifecycle_stages: bool = True,
    segments: bool = False,
    customer_values: bool = False,
) -> Condition | None:
    """The condition tree, or None after recording why it is unusable. `lifecycle_stages=False` refuses
    lifecycle-stage conditions (inside a lifecycle model); `segments=True` accepts segment-membership
    conditions (their names are checked here, their existence by the caller); `customer_values=True` accepts
    customer-value conditions."""
    depth, count = _shape(message)
    if depth > MAX_DEPTH:
        violations.append(FieldViolation(path, f"nested {depth} deep; at most {MAX_DEPTH}", "TOO_DEEP"))
    if count > MAX_CONDITIONS:
        violations.append(
            FieldViolation(path, f"{count} conditions; at most {MAX_CONDITIONS}, groups included", "TOO_MANY")
        )
    if depth > MAX_DEPTH or count > MAX_CONDITIONS:
        return None
    found = len(violations)
    allowed = _Allowed(lifecycle_stages, segments, customer_values)
    condition = _condition(message, path, violations, allowed)
    return condition if len(violations) == found else None


def _condition(
    message: condition_pb2.PersonCondition, path: str, violations: list[FieldViolation], allowed: _Allowed
) -> Condition | None:
    kind = message.WhichOneof("condition")
    found: Condition | None = None
    if kind is None:
        violations.append(FieldViolation(path, "set exactly one condition", "REQUIRED"))
    elif kind == "group":
        found = _group(message.group, f"{path}.group", violations, allowed)
    elif kind == "person_property":
        where = f"{path}.person_property"
        converted = property_filter(message.person_property, where, violations)
        if converted is not None and not converted.on_person:
            violations.append(FieldViolation(f"{where}.property", "must be a person. path"))
        elif converted is not None:
            found = PersonProperty(converted)
    elif kind in _EVENT_CONDITIONS:
        found = _EVENT_CONDITIONS[kind](getattr(message, kind), f"{path}.{kind}", violations)
    elif kind == "lifecycle_stage":
        found = _lifecycle(
            message.lifecycle_stage, f"{path}.lifecycle_stage", violations, allowed.lifecycle_stages
        )
    elif kind == "segment_membership":
        found = _segment_membership(
            message.segment_membership, f"{path}.segment_membership", violations, allowed
        )
    elif kind == "customer_value":
        found = _customer_value(message.customer_value, f"{path}.customer_value", violations, allowed)
    elif not message.has_identifier_type:
        violations.append(FieldViolation(f"{path}.has_identifier_type", "must not be empty", "REQUIRED"))
    else:
        found = HasIdentifierType(message.has_identifier_type)
    return Not(found) if found is not None and message.negate else found


def _group(
    message: condition_pb2.ConditionGroup, path: str, violations: list[FieldViolation], allowed: _Allowed
) -> Condition | None:
    operator = _LOGICAL.get(message.operator)
    if operator is None:
        violations.append(FieldViolation(f"{path}.operator", "unknown operator"))
    if not message.conditions:
        violations.append(FieldViolation(f"{path}.conditions", "at least one condition", "REQUIRED"))
    inner = [
        _condition(c, f"{path}.conditions[{i}]", violations, allowed)
        for i, c in enumerate(message.conditions)
    ]
    if operator is None or not inner or any(c is None for c in inner):
        return None
    return Group(operator, tuple(c for c in inner if c is not None))


def _event_count(
    message: condition_pb2.EventCountCondition, path: str, violations: list[FieldViolation]
) -> Condition | None:
    found = len(violations)
    matcher = event_matcher(message.event, f"{path}.event", violations)
    comparison = _COMPARISONS.get(message.comparison)
    if comparison is None:
        violations.append(FieldViolation(f"{path}.comparison", "unknown comparison"))
    if message.count < 0:
        violations.append(FieldViolation(f"{path}.count", "must not be negative", "OUT_OF_RANGE"))
    window = duration(message.window, f"{path}.window", violations) if message.HasField("window") else None
    if len(violations) > found or comparison is None:
        return None
    return EventCount(matcher, comparison, message.count, window)


def _event_aggregate(
    message: condition_pb2.EventAggregateCondition, path: str, violations: list[FieldViolation]
) -> Condition | None:
    found = len(violations)
    matcher = event_matcher(message.event, f"{path}.event", violations)
    aggregation = _AGGREGATIONS.get(message.aggregation)
    if aggregation is None:
        violations.append(FieldViolation(f"{path}.aggregation", "choose an aggregation", "REQUIRED"))
    if not numeric_event_path(message.property):
        violations.append(FieldViolation(f"{path}.property", NUMERIC_PATH_HINT))
    if message.property == "revenue" and not message.currency_code:
        violations.append(
            FieldViolation(
                f"{path}.currency_code", "revenue is summed up in one currency (ISO 4217)", "REQUIRED"
            )
        )
    elif message.currency_code and not _CURRENCY.fullmatch(message.currency_code):
        violations.append(FieldViolation(f"{path}.currency_code", "three upper-case letters (ISO 4217)"))
    comparison = _COMPARISONS.get(message.comparison)
    if comparison is None:
        violations.append(FieldViolation(f"{path}.comparison", "unknown comparison"))
    if not math.isfinite(message.threshold):
        violations.append(FieldViolation(f"{path}.threshold", "must be a finite number"))
    window = duration(message.window, f"{path}.window", violations) if message.HasField("window") else None
    if len(violations) > found or aggregation is None or comparison is None:
        return None
    return EventAggregate(
        matcher, aggregation, message.property, comparison, message.threshold, message.currency_code, window
    )


def _sequence(
    message: condition_pb2.SequenceCondition, path: str, violations: list[FieldViolation]
) -> Condition | None:
    found = len(violations)
    if not 2 <= len(message.steps) <= MAX_SEQUENCE_STEPS:
        violations.append(FieldViolation(f"{path}.steps", f"2 to {MAX_SEQUENCE_STEPS} steps", "OUT_OF_RANGE"))
    steps = tuple(event_matcher(s, f"{path}.steps[{i}]", violations) for i, s in enumerate(message.steps))
    within = duration(message.within, f"{path}.within", violations) if message.HasField("within") else None
    window = duration(message.window, f"{path}.window", violations) if message.HasField("window") else None
    return None if len(violations) > found else Sequence(steps, within, window)


# The conditions on the person's events alone: their parsers by the PersonCondition field that holds them.
_EVENT_CONDITIONS: dict[str, Callable[[Any, str, list[FieldViolation]], Condition | None]] = {
    "event_count": _event_count,
    "event_aggregate": _event_aggregate,
    "sequence": _sequence,
}


def _lifecycle(
    message: condition_pb2.LifecycleStageCondition, path: str, violations: list[FieldViolation], allowed: bool
) -> Condition | None:
    if not allowed:
        violations.append(
            FieldViolation(path, "a lifecycle model's conditions cannot use lifecycle-stage conditions")
        )
        return None
    if not message.stages:
        violations.append(FieldViolation(f"{path}.stages", "at least one stage", "REQUIRED"))
        return None
    found = len(violations)
    stages = [lifecycle_stage(s, f"{path}.stages[{i}]", violations) for i, s in enumerate(message.stages)]
    return (
        None if len(violations) > found else InLifecycleStage(frozenset(s for s in stages if s is not None))
    )


def _segment_membership(
    message: condition_pb2.SegmentMembershipCondition,
    path: str,
    violations: list[FieldViolation],
    allowed: _Allowed,
) -> Condition | None:
    if not allowed.segments:
        violations.append(
            FieldViolation(
                path,
                "a lifecycle model cannot refer to segments (segments may refer to lifecycle stages)",
                SEGMENT_IN_LIFECYCLE_MODEL,
            )
        )
        return None
    name = SEGMENT_NAME.fullmatch(message.segment)
    if name is None:
        violations.append(FieldViolation(f"{path}.segment", "must be segments/{segment_id}"))
        return None
    return InSegment(name.group(1))


def _customer_value(
    message: condition_pb2.CustomerValueCondition,
    path: str,
    violations: list[FieldViolation],
    allowed: _Allowed,
) -> Condition | None:
    if not allowed.customer_values:
        violations.append(FieldViolation(path, "customer-value conditions are available in segments only"))
        return None
    found = len(violations)
    metric = _METRICS.get(message.metric)
    if metric is None:
        violations.append(FieldViolation(f"{path}.metric", "choose a metric", "REQUIRED"))
    if not _CURRENCY.fullmatch(message.currency_code):
        violations.append(FieldViolation(f"{path}.currency_code", "three upper-case letters (ISO 4217)"))
    for i, name in enumerate(message.purchase_event_names):
        if not name:
            violations.append(FieldViolation(f"{path}.purchase_event_names[{i}]", "must not be empty"))
    window = duration(message.window, f"{path}.window", violations) if message.HasField("window") else None
    comparison = _COMPARISONS.get(message.comparison)
    if comparison is None:
        violations.append(FieldViolation(f"{path}.comparison", "unknown comparison"))
    threshold, segments = _value_test(message, metric, path, violations)
    if len(violations) > found or metric is None or comparison is None:
        return None
    return CustomerValue(
        metric,
        message.currency_code,
        comparison,
        threshold,
        frozenset(segments),
        tuple(message.purchase_event_names),
        window,
    )


def _value_test(
    message: condition_pb2.CustomerValueCondition,
    metric: ValueMetric | None,
    path: str,
    violations: list[FieldViolation],
) -> tuple[Decimal, list[RfmSegment]]:
    """The threshold (HISTORIC_VALUE, PURCHASE_COUNT) or the accepted segments (RFM_SEGMENT) of `metric`."""
    threshold = Decimal(0)
    segments: list[RfmSegment] = []
    if metric is ValueMetric.HISTORIC_VALUE:
        amount = message.value
        if amount.currency_code not in ("", message.currency_code):
            violations.append(FieldViolation(f"{path}.value.currency_code", "must equal currency_code"))
        if abs(amount.nanos) >= 10**9 or amount.units * amount.nanos < 0:
            violations.append(FieldViolation(f"{path}.value", "nanos in (-1e9, 1e9), with the sign of units"))
        threshold = Decimal(amount.units) + Decimal(amount.nanos).scaleb(-9)
    elif metric is ValueMetric.PURCHASE_COUNT:
        if message.count < 0:
            violations.append(FieldViolation(f"{path}.count", "must not be negative", "OUT_OF_RANGE"))
        threshold = Decimal(message.count)
    elif metric is ValueMetric.RFM_SEGMENT:
        if not message.rfm_segments:
            violations.append(FieldViolation(f"{path}.rfm_segments", "at least one segment", "REQUIRED"))
        for i, value in enumerate(message.rfm_segments):
            segment = _RFM_SEGMENTS.get(value)
            if segment is None:
                violations.append(FieldViolation(f"{path}.rfm_segments[{i}]", "choose an RFM segment"))
            else:
                segments.append(segment)
    return threshold, segments
