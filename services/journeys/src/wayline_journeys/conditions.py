"""Conditions on one person, evaluated at a point in time: the PersonCondition trees of lifecycle models and
segments. Free of protobuf and of SQL: `conditions_converters.py` builds them from requests (with their
limits checked), `store/conditions.py` compiles them to ClickHouse.

What each condition means at evaluation time T, over the person's events before T (read as their current
person through identity's overrides):
- `PersonProperty`: the latest value (by timestamp, then event id) of the trait in the person's identify
  events compares as the filter says; negated operators hold for persons without the trait.
- `EventCount`: the number of events matching the matcher with timestamp in [T - window, T) (all before T
  without a window) compares with the threshold. A `person.` filter in the matcher holds when the person
  passes it at T; otherwise no event matches.
- `EventAggregate`: the sum, mean, least or greatest of the JSON numbers at `property` on the events
  matching the matcher (with revenue in `currency` for `revenue`) with timestamp in [T - window, T) (all
  before T without a window) compares with the threshold. Without such a number the sum is 0 and the
  others have no value, so the condition does not hold (its negation does). `person.` filters as in
  `EventCount`.
- `Sequence`: events e1, ..., en with strictly increasing timestamps, ei matching step i, en - e1 at most
  `within` and en in [T - window, T). Two events with the same timestamp are not in order, and one event is
  never two steps.
- `HasIdentifierType`: one of the events carries an identifier of the type.
- `InLifecycleStage`: the person's stage under the tenant's default lifecycle model (see lifecycle.py).
- `InSegment`: the person is a current member of the segment (its membership as kept by the segments read
  model, whatever T is: memberships are only kept for now).
- `CustomerValue`: the person's customer value over their counted events in [T - window, T) (all before T
  without a window), as customer_value.py defines it, passes the metric's test; RFM scores rank the person
  among all the tenant's purchasers in that range. Persons without counted events have value 0, no purchase
  and RfmSegment.NO_PURCHASE.
- `Group`: every (AND) or some (OR) condition holds; `Not` inverts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum, IntEnum

from wayline_journeys.analytics import EventMatcher, PropertyFilter
from wayline_journeys.customer_value import RfmSegment

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_SEQUENCE_STEPS",
    "Aggregation",
    "Comparison",
    "Condition",
    "CustomerValue",
    "EventAggregate",
    "EventCount",
    "Group",
    "HasIdentifierType",
    "InLifecycleStage",
    "InSegment",
    "LifecycleStage",
    "Logical",
    "Not",
    "PersonProperty",
    "Sequence",
    "ValueMetric",
    "nodes",
]

MAX_DEPTH = 8
"""The deepest a tree may be: a condition at the root is at depth 1, the conditions of a group one deeper."""
MAX_CONDITIONS = 100
"""The most conditions a tree may hold, groups included."""
MAX_SEQUENCE_STEPS = 20


class LifecycleStage(IntEnum):
    """Ordered: a person is in the highest stage whose condition holds."""

    UNSPECIFIED = 0
    AWARENESS = 1
    ACQUISITION = 2
    ONBOARDING = 3
    ENGAGEMENT = 4
    RETENTION = 5
    ADVOCACY = 6


class Comparison(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    GREATER_THAN = ">"
    GREATER_THAN_OR_EQUAL = ">="
    LESS_THAN = "<"
    LESS_THAN_OR_EQUAL = "<="

    def holds(self, left: int | float | Decimal, right: int | float | Decimal) -> bool:
        return {
            Comparison.EQUAL: left == right,
            Comparison.NOT_EQUAL: left != right,
            Comparison.GREATER_THAN: left > right,
            Comparison.GREATER_THAN_OR_EQUAL: left >= right,
            Comparison.LESS_THAN: left < right,
            Comparison.LESS_THAN_OR_EQUAL: left <= right,
        }[self]


class Logical(Enum):
    AND = "AND"
    OR = "OR"


@dataclass(frozen=True)
class PersonProperty:
    filter: PropertyFilter
    """A `person.<trait>` filter."""


@dataclass(frozen=True)
class EventCount:
    event: EventMatcher
    comparison: Comparison
    count: int
    window: timedelta | None = None


class Aggregation(Enum):
    SUM = "sum"
    AVERAGE = "avg"
    MINIMUM = "min"
    MAXIMUM = "max"


@dataclass(frozen=True)
class EventAggregate:
    event: EventMatcher
    aggregation: Aggregation
    property: str
    """A numeric event path (analytics_converters.numeric_event_path)."""
    comparison: Comparison
    threshold: float
    currency: str = ""
    """For `revenue`: only revenue in this currency counts."""
    window: timedelta | None = None


@dataclass(frozen=True)
class Sequence:
    steps: tuple[EventMatcher, ...]
    within: timedelta | None = None
    window: timedelta | None = None


@dataclass(frozen=True)
class HasIdentifierType:
    identifier_type: str


@dataclass(frozen=True)
class InLifecycleStage:
    stages: frozenset[LifecycleStage]


@dataclass(frozen=True)
class InSegment:
    segment_id: str
    """The id of `segments/{segment_id}`."""


class ValueMetric(Enum):
    HISTORIC_VALUE = "historic_value"
    PURCHASE_COUNT = "purchase_count"
    RFM_SEGMENT = "rfm_segment"


@dataclass(frozen=True)
class CustomerValue:
    """HISTORIC_VALUE and PURCHASE_COUNT compare with `threshold`; RFM_SEGMENT holds for `rfm_segments`."""

    metric: ValueMetric
    currency: str
    comparison: Comparison = Comparison.GREATER_THAN_OR_EQUAL
    threshold: Decimal = Decimal(0)
    rfm_segments: frozenset[RfmSegment] = frozenset()
    event_names: tuple[str, ...] = ()
    window: timedelta | None = None


@dataclass(frozen=True)
class Group:
    operator: Logical
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = (
    PersonProperty
    | EventCount
    | EventAggregate
    | Sequence
    | HasIdentifierType
    | InLifecycleStage
    | InSegment
    | CustomerValue
    | Group
    | Not
)


def nodes(condition: Condition) -> Iterator[Condition]:
    """Every condition of the tree, `condition` first, depth first (a `Not` and what it inverts are one
    condition of the contract, so only the inverted one is yielded)."""
    while isinstance(condition, Not):
        condition = condition.condition
    yield condition
    if isinstance(condition, Group):
        for inner in condition.conditions:
            yield from nodes(inner)
