"""The online state's values computed the slow way, by scanning every consumed event for every read:
the reference the incremental state (settled folds, windows, caches, replaced copies) must agree with.
It shares the matcher and the JSON value rules with the state (tested on their own, and against ClickHouse
by the parity test) and nothing else."""

from __future__ import annotations

from functools import reduce
from operator import add
from typing import Any

from wayline_decision.features.json_values import MISSING, distinct_key, feature_value, is_number
from wayline_decision.features.matcher import compile_matcher, compile_path
from wayline_decision.features.model import (
    DAY_US,
    Aggregation,
    CompiledSpec,
    FeatureDefinition,
    FeatureValue,
    ObservedEvent,
)

__all__ = ["reference_values"]


def _kept(consumed: list[ObservedEvent]) -> list[ObservedEvent]:
    """One copy per event id: the one received last (the first of those received at that time)."""
    kept: dict[str, ObservedEvent] = {}
    for e in consumed:
        if e.event_id not in kept or e.received_at_us > kept[e.event_id].received_at_us:
            kept[e.event_id] = e
    return list(kept.values())


def reference_values(
    spec: CompiledSpec, consumed: list[ObservedEvent], person: str, t: int
) -> list[FeatureValue]:
    mine = [
        e for e in _kept(consumed) if e.person_id == person and e.timestamp_us < t and e.received_at_us < t
    ]
    return [_value(f, mine, t) for f in spec.features]


def _value(f: FeatureDefinition, mine: list[ObservedEvent], t: int) -> FeatureValue:
    kind = f.aggregation
    order = sorted(mine, key=lambda e: (e.timestamp_us, e.event_id))
    if kind is Aggregation.PERSON_PROPERTY:
        trait = f.property.removeprefix("person.")
        carrying = [e for e in order if e.type == "identify" and trait in e.properties]
        found = feature_value(carrying[-1].properties[trait]) if carrying else None
        return f.default if found is None else found
    matches = compile_matcher(f.events)
    counted = [e for e in order if matches(e) and (f.window_us is None or e.timestamp_us >= t - f.window_us)]
    if kind.reads_property:
        lookup = compile_path(f.property)
        valued = [(e, v) for e in counted if (v := lookup(e)) is not MISSING and v is not None]
        if kind.numeric_property:
            valued = [(e, float(v) + 0.0) for e, v in valued if is_number(v)]
        if not valued:
            return f.default
        values: list[Any] = [v for _, v in valued]
        numbers: list[float] = values if kind.numeric_property else []
        if kind is Aggregation.SUM:
            return reduce(add, sorted(numbers))
        if kind is Aggregation.AVERAGE:
            return reduce(add, sorted(numbers)) / len(numbers)
        if kind is Aggregation.MIN:
            return min(numbers)
        if kind is Aggregation.MAX:
            return max(numbers)
        if kind is Aggregation.COUNT_DISTINCT:
            return float(len({distinct_key(v) for v in values}))
        return feature_value(values[0] if kind is Aggregation.FIRST_VALUE else values[-1])
    if not counted:
        return f.default
    return {
        Aggregation.COUNT: lambda: float(len(counted)),
        Aggregation.DAYS_SINCE_FIRST: lambda: (t - counted[0].timestamp_us) / DAY_US,
        Aggregation.DAYS_SINCE_LAST: lambda: (t - counted[-1].timestamp_us) / DAY_US,
        Aggregation.ACTIVE_DAYS: lambda: float(len({e.timestamp_us // DAY_US for e in counted})),
    }[kind]()
