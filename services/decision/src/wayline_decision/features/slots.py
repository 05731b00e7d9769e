"""One person's memory of one kind of matching event (a slot), and the aggregations read from it.

Features that need the same thing of the same events share a slot: every feature over one matcher that reads
no property (COUNT, DAYS_SINCE_FIRST/LAST, ACTIVE_DAYS: a TIMES slot), the numbers of one path (SUM,
AVERAGE, MIN, MAX: NUMBERS), the non-null values of one path (COUNT_DISTINCT, FIRST/LAST_VALUE: VALUES), or
one trait of identify events (PERSON_PROPERTY: TRAIT), whatever their windows.

A slot has two parts. `entries` are recent events, `(timestamp, event_id, received_at, payload)` sorted by
(timestamp, event id): the order FIRST and LAST break ties by, and the order in which a trailing window is a
contiguous range, found by bisection. `settled` folds the events that no read can exclude any more (both
times before the horizon, and out of every window) into what the aggregations need of them: a count, the
extremes, the set of days, the sorted list of numbers (sums add in ascending order, so the numbers
themselves must be kept, not their sum), the set of distinct values, the latest trait. Settled events count
for every feature without a window; for a slot read only by windowed features they are simply dropped.

Reads at a time after every entry's receipt (the usual read, "now") see a contiguous range of entries, so
the costlier summaries (the ordered sum with count and extremes, the distinct days or values) are cached
by that range until the slot changes, and shared by the features of the slot reading the same range; the
other reads filter the entries one by one. The extremes need no cache: the range's ends are the earliest
and latest entries.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from enum import Enum
from functools import reduce
from operator import add, itemgetter
from typing import Any, NamedTuple

from wayline_decision.features.model import DAY_US, Aggregation, FeatureValue

__all__ = ["Entry", "Settled", "Slot", "SlotKind", "View", "read", "slot_document", "slot_from_document"]

Entry = tuple[int, str, int, Any]
"""(timestamp µs, event id, received_at µs, payload): a day number (TIMES), a float (NUMBERS), a
(feature value, distinct key) pair (VALUES) or a feature value (TRAIT)."""

_CACHE_SIZE = 32


class SlotKind(Enum):
    TIMES = "times"
    NUMBERS = "numbers"
    VALUES = "values"
    TRAIT = "trait"


@dataclass(slots=True)
class Settled:
    """What the aggregations need of the settled events of a slot (only the kind's parts are used)."""

    count: int = 0
    first: Entry | None = None
    last: Entry | None = None
    days: set[int] = field(default_factory=set)
    numbers: list[float] = field(default_factory=list)  # ascending
    keys: set[object] = field(default_factory=set)

    def fold(self, kind: SlotKind, entry: Entry) -> None:
        self.count += 1
        if self.first is None or entry[:2] < self.first[:2]:
            self.first = entry
        if self.last is None or entry[:2] > self.last[:2]:
            self.last = entry
        if kind is SlotKind.TIMES:
            self.days.add(entry[3])
        elif kind is SlotKind.NUMBERS:
            insort(self.numbers, entry[3])
        elif kind is SlotKind.VALUES:
            self.keys.add(entry[3][1])

    def absorb(self, other: Settled) -> None:
        """Fold in another person's settled events (a merge): the same parts as folding them one by one."""
        self.count += other.count
        if other.first is not None and (self.first is None or other.first[:2] < self.first[:2]):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last[:2] > self.last[:2]):
            self.last = other.last
        self.days |= other.days
        self.numbers = sorted(self.numbers + other.numbers)
        self.keys |= other.keys


@dataclass(slots=True)
class Slot:
    kind: SlotKind
    entries: list[Entry] = field(default_factory=list)
    settled: Settled = field(default_factory=Settled)
    cache: dict[tuple[bool, int, int], Any] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        insort(self.entries, entry)
        self.cache.clear()

    def remove(self, timestamp_us: int, event_id: str) -> None:
        entries = self.entries
        i = bisect_left(entries, (timestamp_us, event_id))
        if i < len(entries) and entries[i][:2] == (timestamp_us, event_id):
            del entries[i]
            self.cache.clear()

    def settle(self, horizon_us: int, window_us: int | None, keeps_all: bool) -> None:
        """Fold (or drop, when no feature without a window reads the slot) the entries that every read at or
        after `horizon_us` sees, or that are out of every window by then."""
        before = horizon_us - (window_us or 0)
        entries = self.entries
        end = bisect_left(entries, (before,))
        if end == 0:
            return
        kept = [e for e in entries[:end] if e[2] >= horizon_us]
        if keeps_all:
            for entry in entries[:end]:
                if entry[2] < horizon_us:
                    self.settled.fold(self.kind, entry)
        self.entries = kept + entries[end:]
        self.cache.clear()

    def absorb(self, other: Slot) -> None:
        """Take another person's slot of the same kind into this one (a merge). An event held by both (one
        event cannot belong to two persons, but a copy may have been resolved to each) is kept once."""
        mine = {entry[:2] for entry in self.entries}
        self.entries = sorted([*self.entries, *(e for e in other.entries if e[:2] not in mine)], key=_ORDER)
        self.settled.absorb(other.settled)
        self.cache.clear()

    def detached_copy(self) -> Slot:
        """A copy sharing only immutable parts (the entry tuples), without the summary cache."""
        settled = self.settled
        return Slot(
            self.kind,
            list(self.entries),
            Settled(
                settled.count,
                settled.first,
                settled.last,
                set(settled.days),
                list(settled.numbers),
                set(settled.keys),
            ),
        )

    @property
    def empty(self) -> bool:
        return not self.entries and self.settled.count == 0


class View(NamedTuple):
    """What a read sees: entries[lo:hi] and, for a feature without a window, the settled events."""

    entries: list[Entry]
    lo: int
    hi: int
    settled: Settled | None

    @property
    def size(self) -> int:
        return (self.settled.count if self.settled is not None else 0) + self.hi - self.lo

    def earliest(self) -> Entry | None:
        found = self.entries[self.lo] if self.hi > self.lo else None
        other = self.settled.first if self.settled is not None else None
        if found is None or (other is not None and other[:2] < found[:2]):
            return other
        return found

    def latest(self) -> Entry | None:
        found = self.entries[self.hi - 1] if self.hi > self.lo else None
        other = self.settled.last if self.settled is not None else None
        if found is None or (other is not None and other[:2] > found[:2]):
            return other
        return found

    def payloads(self) -> list[Any]:
        return list(map(_PAYLOAD, self.entries[self.lo : self.hi]))


_PAYLOAD = itemgetter(3)
_ORDER = itemgetter(0, 1)


def _summary(kind: SlotKind, view: View) -> Any:
    """What the costlier aggregations of a slot kind read, computed once per view for all of them: for
    NUMBERS (sum, count, least, greatest), the sum added left to right in ascending order from the least
    value on, as ClickHouse's arraySum(arraySort(...)) adds; for TIMES and VALUES the number of distinct
    days or values."""
    payloads = view.payloads()
    if kind is SlotKind.NUMBERS:
        if view.settled is not None:
            payloads += view.settled.numbers
        payloads.sort()
        return (reduce(add, payloads), len(payloads), payloads[0], payloads[-1])
    base: set[Any] | None
    if kind is SlotKind.TIMES:
        recent = set(payloads)
        base = view.settled.days if view.settled is not None else None
    else:
        recent = {p[1] for p in payloads}
        base = view.settled.keys if view.settled is not None else None
    return float(len(base | recent) if base else len(recent))


def read(aggregation: Aggregation, slot: Slot, view: View, as_of_us: int, *, cached: bool) -> FeatureValue:
    """The aggregation over what `view` sees; None when nothing counts. `cached` when the view is the same
    for every read until the slot changes: its summary is then kept in the slot's cache."""
    count = view.size
    if count == 0:
        return None
    if aggregation is Aggregation.COUNT:
        return float(count)
    first = aggregation is Aggregation.FIRST_VALUE or aggregation is Aggregation.DAYS_SINCE_FIRST
    if (
        first
        or aggregation is Aggregation.LAST_VALUE
        or aggregation is Aggregation.DAYS_SINCE_LAST
        or (aggregation is Aggregation.PERSON_PROPERTY)
    ):  # identity tests: hashing an Enum member is a Python call, and this is the hot path
        entry = view.earliest() if first else view.latest()
        assert entry is not None
        if aggregation is Aggregation.DAYS_SINCE_FIRST or aggregation is Aggregation.DAYS_SINCE_LAST:
            return (as_of_us - entry[0]) / DAY_US
        return entry[3][0] if slot.kind is SlotKind.VALUES else entry[3]  # type: ignore[no-any-return]
    if not cached:
        summary = _summary(slot.kind, view)
    else:
        key = (view.settled is not None, view.lo, view.hi)
        summary = slot.cache.get(key)
        if summary is None:
            if len(slot.cache) >= _CACHE_SIZE:
                slot.cache.clear()
            summary = slot.cache[key] = _summary(slot.kind, view)
    if slot.kind is not SlotKind.NUMBERS:
        return summary  # type: ignore[no-any-return]  # COUNT_DISTINCT, ACTIVE_DAYS
    total, count, least, greatest = summary
    if aggregation is Aggregation.SUM:
        return total  # type: ignore[no-any-return]
    if aggregation is Aggregation.AVERAGE:
        return total / count  # type: ignore[no-any-return]
    return least if aggregation is Aggregation.MIN else greatest  # type: ignore[no-any-return]


def _payload_document(kind: SlotKind, payload: Any) -> Any:
    return [payload[0], list(payload[1])] if kind is SlotKind.VALUES else payload


def _payload_of(kind: SlotKind, found: Any) -> Any:
    if kind is SlotKind.VALUES:
        return (found[0], tuple(found[1]))
    if kind is SlotKind.TIMES:
        return int(found)
    return found


def _entry_document(kind: SlotKind, entry: Entry | None) -> list[Any] | None:
    if entry is None:
        return None
    return [entry[0], entry[1], entry[2], _payload_document(kind, entry[3])]


def _entry_of(kind: SlotKind, found: list[Any] | None) -> Entry | None:
    if found is None:
        return None
    return (int(found[0]), str(found[1]), int(found[2]), _payload_of(kind, found[3]))


def slot_document(slot: Slot) -> dict[str, Any]:
    """A slot as plain JSON-able data (the summary cache is left out: it is rebuilt on the next read).
    Numbers stay floats and days ints, so that a document read back gives the very same values."""
    kind, settled = slot.kind, slot.settled
    return {
        "kind": kind.value,
        "entries": [_entry_document(kind, e) for e in slot.entries],
        "count": settled.count,
        "first": _entry_document(kind, settled.first),
        "last": _entry_document(kind, settled.last),
        "days": sorted(settled.days),
        "numbers": settled.numbers,
        "keys": sorted((list(k) for k in settled.keys), key=repr),  # type: ignore[call-overload]
    }


def slot_from_document(found: dict[str, Any]) -> Slot:
    kind = SlotKind(found["kind"])
    settled = Settled(
        count=int(found["count"]),
        first=_entry_of(kind, found["first"]),
        last=_entry_of(kind, found["last"]),
        days={int(d) for d in found["days"]},
        numbers=[float(n) for n in found["numbers"]],
        keys={tuple(k) for k in found["keys"]},
    )
    entries: list[Entry] = [e for e in (_entry_of(kind, d) for d in found["entries"]) if e is not None]
    return Slot(kind, entries, settled)
