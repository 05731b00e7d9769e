"""What the online state keeps and reads, planned once per registered spec: the union of the slots the specs'
features need (slots.py), each numbered so that the per-event and per-read work indexes lists instead of
hashing matchers, and how each feature reads its slot.

Extraction turns an event into each slot's payload: the UTC day for a TIMES slot (whose features read no
property), the number at the path for NUMBERS (other values skipped), the (feature value, distinct key) of a
non-null value for VALUES, and for a TRAIT the value of the trait on an identify event that carries it (null
included: a trait last set to null has no value). Each distinct matcher runs at most once per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wayline_decision.features.json_values import MISSING, distinct_key, feature_value, is_number
from wayline_decision.features.matcher import Predicate, compile_matcher, compile_path
from wayline_decision.features.model import (
    DAY_US,
    Aggregation,
    CompiledSpec,
    EventMatcher,
    FeatureValue,
    ObservedEvent,
)
from wayline_decision.features.slots import SlotKind

__all__ = ["FeaturePlan", "Registry", "SlotKey", "SlotPlan"]

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
        self.specs: dict[tuple[str, str], tuple[FeaturePlan, ...]] = {}

    def register(self, spec: CompiledSpec) -> None:
        plans = []
        for feature in spec.features:
            key = _slot_of(feature.aggregation, feature.events, feature.property)
            index = self._slot_ids.get(key)
            if index is None:
                index = self._slot_ids[key] = len(self.slots)
                self.slots.append(SlotPlan(index, key[0], self._extractor(*key), key))
            slot = self.slots[index]
            window = None if slot.kind is SlotKind.TRAIT else feature.window_us
            if window is None:
                slot.keeps_all = True
            else:
                slot.window_us = max(slot.window_us or 0, window)
            plans.append(FeaturePlan(index, feature.aggregation, window, feature.default))
        self.specs[spec.key] = tuple(plans)

    def payloads(self, event: ObservedEvent) -> Iterator[tuple[int, Any]]:
        """(slot index, payload) of every slot the event goes into."""
        matched: list[bool | None] = [None] * len(self._predicates)
        for slot in self.slots:
            payload = slot.extract(event, matched)
            if payload is not _SKIP:
                yield slot.index, payload

    def _extractor(self, kind: SlotKind, matcher: EventMatcher, path: str) -> Extract:
        if kind is SlotKind.TRAIT:
            return _trait(path)
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


def _trait(trait: str) -> Extract:
    def extract(event: ObservedEvent, matched: list[bool | None]) -> Any:
        if event.type != "identify" or trait not in event.properties:
            return _SKIP
        return feature_value(event.properties[trait])

    return extract
