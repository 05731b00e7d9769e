"""Features of a person at a point in time (GetProfileFeatures), and the store that computes them for a batch
of observations; ExportTrainingSet (training_set.py) uses the same store call, so a served feature and a
trained one are the same computation. Free of protobuf and SQL.

The contract's FeatureAggregation comments define the values; in short, at observation time `t` with data
cut-off `D`, an event of the person counts when it matches the feature's events, happened in
[t - window, t) and was received before both `t` and `D` (`received_at < min(t, D)`). GetProfileFeatures uses
t = D = as_of. Aggregations reading a property take only events whose property has a usable value (a number
for SUM, AVERAGE, MIN and MAX; any non-null JSON value otherwise). A feature with nothing to aggregate takes
its default value (None when unset): the store reports None, `with_defaults` substitutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from wayline_journeys.analytics import EventMatcher
from wayline_journeys.errors import PersonNotFound
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.person_refs import IdentifierResolver

__all__ = [
    "MAX_FEATURES",
    "Aggregation",
    "FeatureDefinition",
    "FeatureQuery",
    "FeatureRow",
    "FeatureSpec",
    "FeatureStore",
    "FeatureValue",
    "LabelDefinition",
    "LabelKind",
    "Observation",
    "ProfileFeatures",
    "ProfileQuery",
    "profile_features",
    "with_defaults",
]

MAX_FEATURES = 500

FeatureValue = float | str | bool | None
"""A feature value: numbers are floats (a lifecycle stage is its number); FIRST/LAST_VALUE and PERSON_PROPERTY
may be strings or booleans."""


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
        return self in _READS_PROPERTY

    @property
    def numeric_property(self) -> bool:
        """True when only numbers of the property count (the others are skipped)."""
        return self in (Aggregation.SUM, Aggregation.AVERAGE, Aggregation.MIN, Aggregation.MAX)


_READS_PROPERTY = frozenset(
    {
        Aggregation.SUM,
        Aggregation.AVERAGE,
        Aggregation.MIN,
        Aggregation.MAX,
        Aggregation.COUNT_DISTINCT,
        Aggregation.FIRST_VALUE,
        Aggregation.LAST_VALUE,
        Aggregation.PERSON_PROPERTY,
    }
)


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
    """LIFECYCLE_STAGE's model: event counts (without `person.` filters) and person properties in groups."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    version: str
    features: tuple[FeatureDefinition, ...]


class LabelKind(Enum):
    BINARY = "binary"
    COUNT = "count"
    SUM = "sum"


@dataclass(frozen=True)
class LabelDefinition:
    """The outcome over matching events in [t, t + horizon) received before the data cut-off."""

    kind: LabelKind
    horizon_us: int
    event: EventMatcher = field(default_factory=EventMatcher)
    property: str = ""
    """For SUM: the event property path summed (numbers only)."""
    attribution: str = ""
    """An event path: when set, only outcome events whose value there equals the anchor's count."""

    def complete(self, observation_time_us: int, data_as_of_us: int) -> bool:
        """Whether the horizon has fully elapsed by the cut-off; incomplete observations are skipped."""
        return observation_time_us + self.horizon_us <= data_as_of_us


@dataclass(frozen=True)
class Observation:
    person_id: str
    time_us: int
    """The observation time in epoch microseconds (exact, as the store compares times)."""
    attribution: str = ""
    """With an attributed label: the anchor's value at the attribution path as stored JSON text ('' when
    the anchor has none, so no outcome is attributed to it)."""


@dataclass(frozen=True)
class FeatureQuery:
    """What the store computes for each observation: `features` (in this order) and the label, over the
    tenant's events received before `data_as_of_us`."""

    tenant: str
    features: tuple[FeatureDefinition, ...]
    data_as_of_us: int
    label: LabelDefinition | None = None


@dataclass(frozen=True)
class FeatureRow:
    """The store's answer for one observation: one value per feature (None when there was nothing to
    aggregate) and the label (None without label definition)."""

    values: tuple[FeatureValue, ...]
    label: float | bool | None = None


class FeatureStore(IdentifierResolver, Protocol):
    def rows(self, query: FeatureQuery, observations: Sequence[Observation]) -> list[FeatureRow]:
        """One row per observation, in order (one statement; callers bound the batch size)."""
        ...


def with_defaults(
    features: Sequence[FeatureDefinition], values: Sequence[FeatureValue]
) -> list[FeatureValue]:
    """The values with each missing one (None) replaced by its feature's default."""
    return [f.default if v is None else v for f, v in zip(features, values, strict=True)]


@dataclass(frozen=True)
class ProfileQuery:
    tenant: str
    spec: FeatureSpec
    features: tuple[FeatureDefinition, ...]
    """The spec's features the caller asked for, in spec order."""
    as_of_us: int
    person_id: str = ""
    identifier: tuple[str, str] | None = None


@dataclass(frozen=True)
class ProfileFeatures:
    person_id: str
    as_of_us: int
    values: tuple[tuple[str, FeatureValue], ...]
    """(feature name, value) in spec order."""


def profile_features(store: FeatureStore, query: ProfileQuery) -> ProfileFeatures:
    """The person's features at `as_of`: the ExportTrainingSet row observing the person then, with the
    cut-off at the same time. An identifier no event carries is PERSON_NOT_FOUND; an unknown person id gets
    the defaults (a person without events)."""
    person_id = query.person_id
    if query.identifier is not None:
        found = store.current_persons(query.tenant, [query.identifier]).get(query.identifier)
        if found is None:
            raise PersonNotFound(f"no stored event carries the identifier {query.identifier[0]}")
        person_id = found
    features = FeatureQuery(query.tenant, query.features, query.as_of_us)
    (row,) = store.rows(features, [Observation(person_id, query.as_of_us)])
    values = with_defaults(query.features, row.values)
    return ProfileFeatures(
        person_id, query.as_of_us, tuple((f.name, v) for f, v in zip(query.features, values, strict=True))
    )
