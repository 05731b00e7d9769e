"""The decision service's vocabulary of features, free of protobuf: what a compiled FeatureSpec is made of
(definitions, event matchers, property filters) and the events the online state consumes.

These mirror the contract (wayline/journeys/v1/feature.proto and analytics.proto) rather than any other
service's code: services share contracts, never implementation packages, so journeys' SQL and this state
are two independent readings of one text, held together by the parity test
(tests/contract/test_feature_parity.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wayline.common.feature_encoding import FeatureEncoder

__all__ = [
    "DAY_US",
    "Aggregation",
    "Comparison",
    "CompiledSpec",
    "CountTest",
    "EventMatcher",
    "FeatureDefinition",
    "FeatureValue",
    "FilterOperator",
    "JsonValue",
    "LifecycleModel",
    "Negation",
    "ObservedEvent",
    "PropertyFilter",
    "StageCondition",
    "StageGroup",
    "TraitTest",
]

DAY_US = 86_400_000_000

JsonValue = str | float | bool | None
"""A filter or default value as JSON has it (protobuf's Value carries numbers as doubles)."""

FeatureValue = float | str | bool | None
"""A feature value: numbers are floats; FIRST_VALUE, LAST_VALUE and PERSON_PROPERTY may give strings
(objects and lists as their compact JSON text) or booleans; None is missing."""


class FilterOperator(Enum):
    """The contract's FilterOperator."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    MATCHES_REGEX = "matches_regex"
    GREATER_THAN = "greater_than"
    GREATER_THAN_OR_EQUAL = "greater_than_or_equal"
    LESS_THAN = "less_than"
    LESS_THAN_OR_EQUAL = "less_than_or_equal"
    IS_SET = "is_set"
    IS_NOT_SET = "is_not_set"

    @property
    def negated(self) -> bool:
        """True for the operators that hold where their positive form does not (so for a missing property)."""
        return self in _POSITIVE

    @property
    def positive(self) -> FilterOperator:
        return _POSITIVE.get(self, self)


_POSITIVE = {
    FilterOperator.NOT_EQUALS: FilterOperator.EQUALS,
    FilterOperator.NOT_CONTAINS: FilterOperator.CONTAINS,
    FilterOperator.IS_NOT_SET: FilterOperator.IS_SET,
}


@dataclass(frozen=True)
class PropertyFilter:
    """A condition on one event property path (`properties.plan`, `context.campaign.source`, `revenue`)."""

    path: str
    operator: FilterOperator
    values: tuple[JsonValue, ...] = ()


@dataclass(frozen=True)
class EventMatcher:
    """Events whose every set field matches; type and channels are the short lower-case names (`web`)."""

    name: str = ""
    type: str = ""
    channels: tuple[str, ...] = ()
    filters: tuple[PropertyFilter, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not (self.name or self.type or self.channels or self.filters)


class Aggregation(Enum):
    """The contract's FeatureAggregation."""

    COUNT = "count"
    SUM = "sum"
    AVERAGE = "average"
    MIN = "min"
    MAX = "max"
    COUNT_DISTINCT = "count_distinct"
    FIRST_VALUE = "first_value"
    LAST_VALUE = "last_value"
    DAYS_SINCE_FIRST = "days_since_first"
    DAYS_SINCE_LAST = "days_since_last"
    ACTIVE_DAYS = "active_days"
    PERSON_PROPERTY = "person_property"
    LIFECYCLE_STAGE = "lifecycle_stage"

    @property
    def reads_property(self) -> bool:
        return self not in _READS_NO_PROPERTY

    @property
    def numeric_property(self) -> bool:
        """True when only numbers of the property count (the other values are skipped)."""
        return self in (Aggregation.SUM, Aggregation.AVERAGE, Aggregation.MIN, Aggregation.MAX)


_READS_NO_PROPERTY = frozenset(
    {
        Aggregation.LIFECYCLE_STAGE,
        Aggregation.COUNT,
        Aggregation.DAYS_SINCE_FIRST,
        Aggregation.DAYS_SINCE_LAST,
        Aggregation.ACTIVE_DAYS,
    }
)


class Comparison(Enum):
    """The contract's ComparisonOperator (condition.proto), as its symbol."""

    EQUAL = "="
    NOT_EQUAL = "!="
    GREATER_THAN = ">"
    GREATER_THAN_OR_EQUAL = ">="
    LESS_THAN = "<"
    LESS_THAN_OR_EQUAL = "<="


@dataclass(frozen=True)
class CountTest:
    """An event-count condition: the number of matching events in the trailing window (all history when
    None) compares with `count`."""

    events: EventMatcher
    comparison: Comparison
    count: int
    window_us: int | None = None


@dataclass(frozen=True)
class TraitTest:
    """A person-property condition: the filter (a `person.<trait>` path) on the trait's latest value."""

    filter: PropertyFilter


@dataclass(frozen=True)
class StageGroup:
    """Every condition holds (`any_of` False) or some does (True)."""

    any_of: bool
    conditions: tuple[StageCondition, ...]


@dataclass(frozen=True)
class Negation:
    condition: StageCondition


StageCondition = CountTest | TraitTest | StageGroup | Negation
"""The conditions a lifecycle-stage feature's model may use (condition.proto's meanings)."""


@dataclass(frozen=True)
class LifecycleModel:
    """A lifecycle-stage feature's model: (stage number, condition) of the stages above awareness, highest
    first (awareness is the fallback of a person with an event)."""

    ranked: tuple[tuple[int, StageCondition], ...]


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    aggregation: Aggregation
    events: EventMatcher = field(default_factory=EventMatcher)
    property: str = ""
    """An event property path, or `person.<trait>` for PERSON_PROPERTY."""
    window_us: int | None = None
    """The trailing window in microseconds; None means all history."""
    default: FeatureValue = None
    lifecycle: LifecycleModel | None = None
    """LIFECYCLE_STAGE's model."""


@dataclass(frozen=True)
class CompiledSpec:
    """A validated FeatureSpec: its definitions in model input order and the encoder of their values."""

    name: str
    version: str
    features: tuple[FeatureDefinition, ...]
    encoder: FeatureEncoder = field(compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)


@dataclass(frozen=True, slots=True)
class ObservedEvent:
    """One stored event as the state reads it. Times are epoch microseconds; `event_id` is the canonical
    lower-case UUID text (the store orders ties by it); `properties` and `context` are JSON-like (dicts,
    lists, strings, numbers, booleans, None), `context` keyed by the proto3 JSON (lowerCamelCase) names, as
    the store keeps it."""

    event_id: str
    person_id: str
    timestamp_us: int
    received_at_us: int
    type: str = "track"
    name: str = ""
    channel: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    group_id: str = ""
    sentiment_score: float | None = None
    revenue: float | None = None
    """The amount as the store reads it as a double: (units * 10^9 + nanos) as a double, divided by 10^9."""
