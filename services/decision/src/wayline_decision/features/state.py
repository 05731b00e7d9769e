"""The online feature state: the decision service's incremental reading of the event stream, from which a
spec's values for a person at a time come without asking journeys, equal to what GetProfileFeatures gives
for that person at that time over the events received so far.

An event counts for a feature read at `as_of` when it matches, `timestamp < as_of`, `received_at < as_of`
and, for a windowed feature, `timestamp >= as_of - window` (feature.proto). Events arrive in any timestamp
order and at least once: the state is idempotent by event id. A copy with a later `received_at` replaces
the earlier one, as the store keeps the copy received last (ReplacingMergeTree by `received_at`).

Memory, bounded by what the registered specs need (see slots.py): per person and per slot, the recent
events `(timestamp, event id, received_at, payload)`, and a fold of the settled ones; a slot read only by
windowed features forgets events once they are out of its longest window. Settling needs a horizon: the
latest `received_at` consumed (or the clock given to `advance`) minus `settle_after_us`. Consequences, each
deliberate:
- reads are exact at any `as_of` at or after the person's horizon, which trails "now" by `settle_after_us`;
  earlier reads raise OutsideRetention (the caller asks journeys, which keeps every event);
- an event received before its person's horizon arrives too late to be told from a copy of a forgotten one:
  it is refused and counted in `late_events`; so `settle_after_us` must exceed the delivery lag of the
  slowest sink feeding the state;
- a copy of an event arriving after its first copy's receipt fell behind the horizon counts twice (the ids
  of settled events are not kept);
- a person with nothing left (windowed slots emptied) is dropped by `advance`.

Cost, measured on a 15-feature spec and a person with 300 events over 40 days (2 shared cores): a read
about 30 µs when nothing changed since the last one (bisections and cached summaries), about 90 µs right
after a new event (the changed slots' summaries are recomputed); consuming an event about 15 µs.

Person merges (identity's override feed, applied by the feature service) move a person's slots into
another's: entries are joined and settled folds add up, as if the events had been consumed under the
survivor from the start (`merge`); an erasure forgets the person (`forget`). RedisFeatureState
(redis_state.py) is the same state shared by several replicas. Specs registered after events were consumed
see only the events consumed since: the feature service (service.py) knows which persons that leaves exact.

`to_document`/`from_document` give the state as plain JSON-able data (slots.py's slot documents) for the
service's snapshots (persistence.py); specs are registered again, in the same order, before a document is
restored, so that slot indexes mean the same slots.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from wayline_decision.features.model import CompiledSpec, FeatureValue, ObservedEvent
from wayline_decision.features.plans import FeaturePlan, Plan, Registry
from wayline_decision.features.slots import Slot, View, read, slot_document, slot_from_document

__all__ = [
    "DEFAULT_SETTLE_AFTER_US",
    "NEVER",
    "InProcessFeatureState",
    "OnlineFeatureState",
    "OutsideRetention",
    "read_feature",
    "read_plans",
]

DEFAULT_SETTLE_AFTER_US = 3_600_000_000  # one hour
NEVER = -(2**63)
"""Earlier than any time: no horizon yet, nothing received yet."""


class OutsideRetention(LookupError):
    """A read at a time before what the state still tells apart (the person's horizon)."""


class OnlineFeatureState(Protocol):
    def register(self, spec: CompiledSpec) -> None:
        """Keep what `spec`'s features need from the events consumed from now on."""
        ...

    def observe(self, event: ObservedEvent) -> bool:
        """Consume one event (identity resolved); False when it changed nothing (a copy, late, unused)."""
        ...

    def values(self, spec: CompiledSpec, person_id: str, as_of_us: int) -> list[FeatureValue]:
        """The registered spec's values for the person at `as_of_us`, defaults applied, in spec order;
        OutsideRetention when the state no longer tells that time apart for the person."""
        ...

    def merge(self, source_id: str, target_id: str) -> None:
        """Move everything kept for `source_id` into `target_id` (a person merge); `source_id` is gone."""
        ...

    def forget(self, person_id: str) -> None:
        """Delete everything kept for the person (an erasure)."""
        ...

    def advance(self, now_us: int) -> None:
        """Move the settle horizon with the clock (events may be rare); called periodically."""
        ...


@dataclass(slots=True)
class _Person:
    slots: dict[int, Slot] = field(default_factory=dict)  # by slot index (plans.py)
    recent: dict[str, tuple[int, int]] = field(default_factory=dict)  # event id → (timestamp, received_at)
    horizon_us: int = NEVER
    max_received_us: int = NEVER
    generation: int = 0
    """The state's generation when this object was made writable: an older one may be shared with a
    detached copy (a snapshot being written) and is copied before it changes."""

    def copy(self, generation: int) -> _Person:
        return _Person(
            slots={index: slot.detached_copy() for index, slot in self.slots.items()},
            recent=dict(self.recent),
            horizon_us=self.horizon_us,
            max_received_us=self.max_received_us,
            generation=generation,
        )


class InProcessFeatureState:
    """OnlineFeatureState in this process's memory (one replica's own state). Not thread-safe: one
    consumer task owns it, and reads happen on the same event loop."""

    def __init__(self, settle_after_us: int = DEFAULT_SETTLE_AFTER_US) -> None:
        if settle_after_us <= 0:
            raise ValueError("settle_after_us must be positive")
        self._settle_after_us = settle_after_us
        self._settle_step_us = max(settle_after_us // 4, 1)
        self._watermark_us = NEVER
        self._persons: dict[str, _Person] = {}
        self._generation = 0
        self._registry = Registry()
        self.late_events = 0

    @property
    def horizon_us(self) -> int:
        """Reads at or after it are exact for every person; events received before it are late."""
        return self._watermark_us - self._settle_after_us if self._watermark_us != NEVER else NEVER

    def register(self, spec: CompiledSpec) -> None:
        self._registry.register(spec)

    def observe(self, event: ObservedEvent) -> bool:
        person = self._writable(event.person_id)
        if person is None:
            person = self._persons[event.person_id] = _Person(generation=self._generation)
        event_id, timestamp, received = event.event_id, event.timestamp_us, event.received_at_us
        if received < person.horizon_us:
            self.late_events += 1
            return False
        earlier = person.recent.get(event_id)
        if earlier is not None:
            if received <= earlier[1]:
                return False  # a copy of what is counted
            for held in person.slots.values():
                held.remove(earlier[0], event_id)
            del person.recent[event_id]
        used = False
        for index, payload in self._registry.payloads(event):
            slot = person.slots.get(index)
            if slot is None:
                slot = person.slots[index] = Slot(self._registry.slots[index].kind)
            slot.add((timestamp, event_id, received, payload))
            used = True
        if used:
            person.recent[event_id] = (timestamp, received)
            person.max_received_us = max(person.max_received_us, received)
        self._watermark_us = max(self._watermark_us, received)
        if self.horizon_us - person.horizon_us >= self._settle_step_us:
            self._settle(person)
        return used or earlier is not None

    def _settle(self, person: _Person) -> None:
        horizon = person.horizon_us = self.horizon_us
        for index, slot in person.slots.items():
            plan = self._registry.slots[index]
            slot.settle(horizon, plan.window_us, plan.keeps_all)
        person.recent = {k: v for k, v in person.recent.items() if v[1] >= horizon}

    def __len__(self) -> int:
        """How many persons the state holds."""
        return len(self._persons)

    def merge(self, source_id: str, target_id: str) -> None:
        if source_id == target_id:
            return
        source = self._writable(source_id)
        if source is None:
            return
        del self._persons[source_id]
        target = self._writable(target_id)
        if target is None:
            self._persons[target_id] = source
            return
        for index, slot in source.slots.items():
            held = target.slots.get(index)
            if held is None:
                target.slots[index] = slot
            else:
                held.absorb(slot)
        target.recent = {**source.recent, **target.recent}
        target.max_received_us = max(target.max_received_us, source.max_received_us)
        # One horizon for the joined slots: both settle up to the state's horizon now (a later horizon than
        # either had is safe: settling keeps every read at or after it exact).
        self._settle(target)

    def forget(self, person_id: str) -> None:
        self._persons.pop(person_id, None)

    def detached_copy(self) -> InProcessFeatureState:
        """A copy that later changes of this state do not reach, for a snapshot to write out after the
        tenant's lock is released: copy-on-write by person. The copy shares every person as it is now and
        the generation moves on, so this state copies a person (`_writable`) before it next changes it; the
        copy itself costs one dict copy (ADR 27)."""
        copy = InProcessFeatureState(self._settle_after_us)
        copy._registry = self._registry
        copy._watermark_us = self._watermark_us
        copy.late_events = self.late_events
        copy._persons = dict(self._persons)
        self._generation += 1
        return copy

    def _writable(self, person_id: str) -> _Person | None:
        """The person, copied first when a detached copy may share it."""
        person = self._persons.get(person_id)
        if person is not None and person.generation != self._generation:
            person = self._persons[person_id] = person.copy(self._generation)
        return person

    def to_document(self) -> dict[str, Any]:
        """The state as plain data (ints, floats, strings, booleans, None, lists, dicts) for a snapshot."""
        return {**self.document_head(), "persons": dict(self.person_documents())}

    def document_head(self) -> dict[str, Any]:
        """`to_document` without the persons."""
        return {"watermark_us": self._watermark_us, "late_events": self.late_events}

    def person_documents(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """`to_document`'s persons one at a time, so that a snapshot never builds them all at once (millions
        of new objects wake the garbage collector's full passes, which hold the GIL)."""
        for person_id, person in self._persons.items():
            yield (
                person_id,
                {
                    "horizon_us": person.horizon_us,
                    "max_received_us": person.max_received_us,
                    "recent": {k: list(v) for k, v in person.recent.items()},
                    "slots": [[index, slot_document(slot)] for index, slot in person.slots.items()],
                },
            )

    def from_document(self, document: dict[str, Any]) -> None:
        """Restore what `to_document` gave, into a state whose specs were registered again in their
        original order (slot indexes are positions in that order)."""
        self._watermark_us = int(document["watermark_us"])
        self.late_events = int(document["late_events"])
        known = len(self._registry.slots)
        persons = {}
        for person_id, found in document["persons"].items():
            slots = {}
            for index, slot in found["slots"]:
                if not 0 <= index < known:
                    raise ValueError(f"slot {index} of person {person_id} is not a registered slot")
                slots[int(index)] = slot_from_document(slot)
            persons[person_id] = _Person(
                slots=slots,
                recent={k: (int(v[0]), int(v[1])) for k, v in found["recent"].items()},
                horizon_us=int(found["horizon_us"]),
                max_received_us=int(found["max_received_us"]),
            )
        self._persons = persons

    def advance(self, now_us: int) -> None:
        """Move the horizon with the clock (events may be rare) and settle every person behind it: windowed
        events leave as their windows pass, persons with nothing left are dropped. O(persons); call it
        periodically."""
        self._watermark_us = max(self._watermark_us, now_us)
        for person_id, found in list(self._persons.items()):
            person = found
            if self.horizon_us - person.horizon_us >= self._settle_step_us:
                person = self._writable(person_id) or found
                self._settle(person)
            if all(slot.empty for slot in person.slots.values()):
                del self._persons[person_id]

    def holds(self, person_id: str) -> bool:
        """Whether the state still keeps anything of the person (advance drops those with nothing left)."""
        return person_id in self._persons

    def values(self, spec: CompiledSpec, person_id: str, as_of_us: int) -> list[FeatureValue]:
        plans = self._registry.specs.get(spec.key)
        if plans is None:
            raise KeyError(f"spec {spec.name} version {spec.version} is not registered")
        person = self._persons.get(person_id)
        if person is None:
            return [p.default for p in plans]
        if as_of_us < person.horizon_us:
            raise OutsideRetention(f"as_of is before the online state's horizon for person {person_id}")
        fast = person.max_received_us < as_of_us  # every entry was received before as_of
        return read_plans(plans, person.slots, as_of_us, fast)


def read_plans(
    plans: tuple[Plan, ...], slots: dict[int, Slot], as_of_us: int, fast: bool
) -> list[FeatureValue]:
    """A spec's values from the person's slots, defaults applied, in spec order."""

    def read(plan: FeaturePlan) -> FeatureValue:
        slot = slots.get(plan.slot)
        return None if slot is None else read_feature(plan, slot, as_of_us, fast)

    found: list[FeatureValue] = []
    for plan in plans:
        value = read(plan) if isinstance(plan, FeaturePlan) else plan.value(read)
        found.append(plan.default if value is None else value)
    return found


def read_feature(plan: FeaturePlan, slot: Slot, as_of_us: int, fast: bool) -> FeatureValue:
    """The feature's value from its slot: on the fast path a range found by bisection (timestamps in
    [as_of - window, as_of)), else the entries filtered one by one (some were received at or after as_of)."""
    entries, window = slot.entries, plan.window_us
    if fast:
        hi = bisect_left(entries, (as_of_us,))
        lo = 0 if window is None else bisect_left(entries, (as_of_us - window,), 0, hi)
    else:
        start = NEVER if window is None else as_of_us - window
        entries = [e for e in entries if start <= e[0] < as_of_us and e[2] < as_of_us]
        lo, hi = 0, len(entries)
    view = View(entries, lo, hi, slot.settled if window is None else None)
    return read(plan.aggregation, slot, view, as_of_us, cached=fast)
