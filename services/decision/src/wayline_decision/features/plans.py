"""What the online state keeps and reads, planned once per registered spec: the union of the slots the specs'
features need (slots.py), each numbered so that the per-event and per-read work indexes lists instead of
hashing matchers, and how each feature reads its slot.

Extraction turns an event into each slot's payload: the UTC day for a TIMES slot (whose features read no
property), the number at the path for NUMBERS (other values skipped), the (feature value, distinct key) of a
non-null value for VALUES, and for a TRAIT the value of the trait on an identify event that carries it (null
included: a trait last set to null has no value). Each distinct matcher runs at most once per event.

A LIFECYCLE_STAGE feature is planned as reads of ordinary slots (`StagePlan`): a count of every event (does
the person have one?), a count per event-count condition (its matcher, its window) and, per person-property
condition, a TRAIT slot whose payload is the filter's verdict on the trait's value, taken on each identify
event that carries the trait: the latest verdict is the condition's (none: the filter on a missing value).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wayline_decision.features.json_values import MISSING, distinct_key, feature_value, is_number
from wayline_decision.features.matcher import Predicate, compile_matcher, compile_path
from wayline_decision.features.model import (
    DAY_US,
    Aggregation,
    Comparison,
    CompiledSpec,
    CountTest,
    EventMatcher,
    FeatureDefinition,
    FeatureValue,
    LifecycleModel,
    Negation,
    ObservedEvent,
    PropertyFilter,
    StageCondition,
    StageGroup,
    TraitTest,
)
from wayline_decision.features.slots import SlotKind

__all__ = ["FeaturePlan", "Plan", "Registry", "SlotKey", "SlotPlan", "StagePlan"]

_SKIP = object()
Extract = Callable[[ObservedEvent, list[bool | None]], Any]
SlotKey = tuple[SlotKind, EventMatcher, str]
"""What makes a slot: its kind, the events it keeps and the property (or trait) it reads."""


@dataclass
class SlotPlan:
    index: int
    kind: SlotKind
    extract: Extract
    key: SlotKey
    window_us: int | None = None
    """The longest window of the windowed features reading the slot."""
    keeps_all: bool = False
    """Some feature without a window reads the slot, so settled events are folded rather than dropped."""


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    slot: int
    aggregation: Aggregation
    window_us: int | None
    default: FeatureValue

    @property
    def slots(self) -> tuple[int, ...]:
        return (self.slot,)


Read = Callable[[FeaturePlan], FeatureValue]
"""Reads one slot plan's value (None when nothing counts) for the person and time being read."""
Test = Callable[[Read], bool]

_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.EQUAL: operator.eq,
    Comparison.NOT_EQUAL: operator.ne,
    Comparison.GREATER_THAN: operator.gt,
    Comparison.GREATER_THAN_OR_EQUAL: operator.ge,
    Comparison.LESS_THAN: operator.lt,
    Comparison.LESS_THAN_OR_EQUAL: operator.le,
}


@dataclass(frozen=True, slots=True)
class StagePlan:
    """A LIFECYCLE_STAGE feature: the highest stage whose test holds, awareness when none does, and no value
    when the person has no event that counts."""

    presence: FeaturePlan
    ranked: tuple[tuple[int, Test], ...]
    default: FeatureValue
    slots: tuple[int, ...]

    def value(self, read: Read) -> FeatureValue:
        if read(self.presence) is None:
            return None
        return float(next((stage for stage, holds in self.ranked if holds(read)), 1))


Plan = FeaturePlan | StagePlan


def _slot_of(aggregation: Aggregation, matcher: EventMatcher, path: str) -> SlotKey:
    if aggregation is Aggregation.PERSON_PROPERTY:
        return SlotKind.TRAIT, EventMatcher(), path.removeprefix("person.")
    if aggregation.numeric_property:
        return SlotKind.NUMBERS, matcher, path
    if aggregation.reads_property:
        return SlotKind.VALUES, matcher, path
    return SlotKind.TIMES, matcher, ""


class Registry:
    """The slots of every registered spec, and each spec's feature plans."""

    def __init__(self) -> None:
        self.slots: list[SlotPlan] = []
        self._slot_ids: dict[SlotKey, int] = {}
        self._matcher_ids: dict[EventMatcher, int] = {}
        self._predicates: list[Predicate] = []
        self.specs: dict[tuple[str, str], tuple[Plan, ...]] = {}

    def register(self, spec: CompiledSpec) -> None:
        self.specs[spec.key] = tuple(self._plan(feature) for feature in spec.features)

    def _plan(self, feature: FeatureDefinition) -> Plan:
        if feature.aggregation is Aggregation.LIFECYCLE_STAGE:
            assert feature.lifecycle is not None  # the spec compiler requires it
            return self._stage_plan(feature.lifecycle, feature.default)
        key = _slot_of(feature.aggregation, feature.events, feature.property)
        return self._slot_plan(key, feature.aggregation, feature.window_us, feature.default)

    def _slot_plan(
        self, key: SlotKey, aggregation: Aggregation, window_us: int | None, default: FeatureValue
    ) -> FeaturePlan:
        index = self._slot_ids.get(key)
        if index is None:
            index = self._slot_ids[key] = len(self.slots)
            self.slots.append(SlotPlan(index, key[0], self._extractor(*key), key))
        slot = self.slots[index]
        window = None if slot.kind is SlotKind.TRAIT else window_us
        if window is None:
            slot.keeps_all = True
        else:
            slot.window_us = max(slot.window_us or 0, window)
        return FeaturePlan(index, aggregation, window, default)

    def _stage_plan(self, model: LifecycleModel, default: FeatureValue) -> StagePlan:
        used: list[FeaturePlan] = []

        def count(events: EventMatcher, window_us: int | None) -> FeaturePlan:
            plan = self._slot_plan((SlotKind.TIMES, events, ""), Aggregation.COUNT, window_us, None)
            used.append(plan)
            return plan

        def test(condition: StageCondition) -> Test:
            if isinstance(condition, Negation):
                inner = test(condition.condition)
                return lambda read: not inner(read)
            if isinstance(condition, StageGroup):
                tests = [test(c) for c in condition.conditions]
                if condition.any_of:
                    return lambda read: any(t(read) for t in tests)
                return lambda read: all(t(read) for t in tests)
            if isinstance(condition, CountTest):
                plan, compare, threshold = (
                    count(condition.events, condition.window_us),
                    _COMPARE[condition.comparison],
                    float(condition.count),
                )
                return lambda read: compare(float(read(plan) or 0.0), threshold)  # a count: a float
            return self._trait_test(condition, used)

        presence = count(EventMatcher(), None)
        ranked = tuple((stage, test(condition)) for stage, condition in model.ranked)
        return StagePlan(presence, ranked, default, tuple(sorted({p.slot for p in used})))

    def _trait_test(self, condition: TraitTest, used: list[FeaturePlan]) -> Test:
        """The filter's latest verdict on the trait (a TRAIT slot of verdicts), or its verdict on a missing
        value: the negated operators hold for a person without the trait."""
        found = condition.filter
        trait = found.path.removeprefix("person.")
        verdict = PropertyFilter(f"properties.{trait}", found.operator, found.values)
        key = (SlotKind.TRAIT, EventMatcher(type="identify", filters=(verdict,)), trait)
        plan = self._slot_plan(key, Aggregation.PERSON_PROPERTY, None, None)
        used.append(plan)
        missing = found.operator.negated

        def holds(read: Read) -> bool:
            latest = read(plan)
            return missing if latest is None else bool(latest)

        return holds

    def payloads(self, event: ObservedEvent) -> Iterator[tuple[int, Any]]:
        """(slot index, payload) of every slot the event goes into."""
        matched: list[bool | None] = [None] * len(self._predicates)
        for slot in self.slots:
            payload = slot.extract(event, matched)
            if payload is not _SKIP:
                yield slot.index, payload

    def _extractor(self, kind: SlotKind, matcher: EventMatcher, path: str) -> Extract:
        if kind is SlotKind.TRAIT:
            return _trait(path) if matcher.matches_everything else _verdict(compile_matcher(matcher), path)
        index = self._matcher_ids.get(matcher)
        if index is None:
            index = self._matcher_ids[matcher] = len(self._predicates)
            self._predicates.append(compile_matcher(matcher))
        predicate = self._predicates[index]
        lookup = compile_path(path) if path else None

        def extract(event: ObservedEvent, matched: list[bool | None]) -> Any:
            hit = matched[index]
            if hit is None:
                hit = matched[index] = predicate(event)
            if not hit:
                return _SKIP
            if lookup is None:
                return event.timestamp_us // DAY_US  # the UTC day
            value = lookup(event)
            if kind is SlotKind.NUMBERS:
                return float(value) + 0.0 if is_number(value) else _SKIP  # -0 reads back as 0
            if value is MISSING or value is None:
                return _SKIP
            return (feature_value(value), distinct_key(value))

        return extract


def _verdict(predicate: Predicate, trait: str) -> Extract:
    """A person-property condition's slot: on an identify event carrying the trait, whether the filter holds
    (the matcher is the identify type and the filter on `properties.<trait>`)."""

    def extract(event: ObservedEvent, matched: list[bool | None]) -> Any:
        if event.type != "identify" or trait not in event.properties:
            return _SKIP
        return predicate(event)

    return extract


def _trait(trait: str) -> Extract:
    def extract(event: ObservedEvent, matched: list[bool | None]) -> Any:
        if event.type != "identify" or trait not in event.properties:
            return _SKIP
        return feature_value(event.properties[trait])

    return extract
