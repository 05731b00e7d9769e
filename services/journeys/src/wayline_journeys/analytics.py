"""The vocabulary every analytics query shares: which events (EventMatcher), which persons (Population), and
how to split a result (Breakdown). Free of protobuf and of SQL: converters build these from requests, and
`store/matching.py` compiles them to parameterised ClickHouse predicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

__all__ = [
    "Breakdown",
    "BreakdownDimension",
    "EventMatcher",
    "FilterOperator",
    "JsonValue",
    "Population",
    "PropertyFilter",
    "SeriesKey",
    "TimeRange",
]

JsonValue = str | float | bool | None
"""A filter value as JSON has it: numbers are floats (protobuf's Value carries doubles)."""


class FilterOperator(Enum):
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
        """True for the operators that hold when their positive form does not (a missing property matches)."""
        return self in (FilterOperator.NOT_EQUALS, FilterOperator.NOT_CONTAINS, FilterOperator.IS_NOT_SET)

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
    """A condition on one property. `path` is the contract's dotted path (`properties.plan`,
    `context.campaign.source`, `person.country`, or an event field such as `channel` or `revenue`)."""

    path: str
    operator: FilterOperator
    values: tuple[JsonValue, ...] = ()

    @property
    def on_person(self) -> bool:
        return self.path.startswith("person.")


@dataclass(frozen=True)
class EventMatcher:
    """Events whose every set field matches. Channels and types are the stored short names (`web`)."""

    name: str = ""
    type: str = ""
    channels: tuple[str, ...] = ()
    filters: tuple[PropertyFilter, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not (self.name or self.type or self.channels or self.filters)


@dataclass(frozen=True)
class Population:
    """Persons to count: members of every segment (`segments/{id}`) whose person properties pass every
    filter."""

    segments: tuple[str, ...] = ()
    person_filters: tuple[PropertyFilter, ...] = ()

    @property
    def everyone(self) -> bool:
        return not (self.segments or self.person_filters)


class BreakdownDimension(Enum):
    NONE = "none"
    CHANNEL = "channel"
    PROPERTY = "property"
    SEGMENT = "segment"


@dataclass(frozen=True)
class Breakdown:
    dimension: BreakdownDimension = BreakdownDimension.NONE
    property: str = ""
    segments: tuple[str, ...] = ()  # `segments/{id}`, for SEGMENT
    limit: int = 10

    def kept_series(self) -> int:
        """How many series keep their own value before the rest are summed into `other`. A breakdown by
        segment keeps every listed segment and the persons outside them: its series share persons, so summing
        some into `other` would count a person in several of them more than once."""
        if self.dimension is BreakdownDimension.SEGMENT:
            return len(self.segments) + 1
        return self.limit


@dataclass(frozen=True)
class TimeRange:
    """[start, end); an unset bound does not restrict."""

    start: datetime | None = None
    end: datetime | None = field(default=None)


@dataclass(frozen=True, order=True)
class SeriesKey:
    """Which series of a broken-down result (BreakdownValue): a value, the `other` series that sums the values
    beyond the breakdown's limit, or the series of those without the value. Without breakdown: all empty."""

    value: str = ""
    other: bool = False
    missing: bool = False
