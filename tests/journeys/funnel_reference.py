"""A plain-Python funnel, written from the definitions in docs/funnels.md and sharing nothing with the
service's walk: ORDERED and STRICT enumerate every attempt and check each against the definition of a clean
attempt directly; ANY takes each step's first matching event in the window.

Specs are small dataclasses from which the tests build both the request and this reference.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.journeys.event_log import Ev

__all__ = ["Exclusion", "Expected", "Match", "Spec", "Step", "Unit", "expected", "units"]


@dataclass(frozen=True)
class Match:
    """An event matcher: name (empty = any), channels (empty = any), and properties.<key> == value."""

    name: str = ""
    channels: tuple[str, ...] = ()
    prop: tuple[str, Any] | None = None

    def __call__(self, e: Ev) -> bool:
        if self.name and e.name != self.name:
            return False
        if self.channels and e.channel not in self.channels:
            return False
        return self.prop is None or e.properties.get(self.prop[0], _ABSENT) == self.prop[1]


_ABSENT = object()


@dataclass(frozen=True)
class Step:
    matches: tuple[Match, ...]
    min_gap_us: int = 0
    max_gap_us: int | None = None


@dataclass(frozen=True)
class Exclusion:
    matches: tuple[Match, ...]
    from_step: int
    to_step: int


@dataclass(frozen=True)
class Spec:
    steps: tuple[Step, ...]
    order: str = "ordered"  # ordered | strict | any
    window_us: int = 14 * 86_400_000_000
    exclusions: tuple[Exclusion, ...] = ()
    start_us: int | None = None
    end_us: int | None = None
    channels: tuple[str, ...] = ()  # the request's event filter
    prop_filter: tuple[str, Any] | None = None  # properties.<key> == value, on every counted event
    breakdown: str = ""  # "" | "channel" | "properties.<key>" | "person.<trait>" | "segment"
    segments: tuple[tuple[str, frozenset[str]], ...] = ()  # for "segment": (name, its current members)
    attribution: str = "first_step"  # first_step | last_step | each_step
    limit: int = 10
    sample: int = 0
    bounds_us: tuple[int, ...] = ()


@dataclass(frozen=True)
class Unit:
    person: str
    value: tuple[str, bool]  # (value, missing)
    level: int
    times: tuple[int, ...]  # µs of steps 0..level


def us(e: Ev) -> int:
    return round(e.at.timestamp() * 1_000_000)


def _text(value: Any) -> tuple[str, bool]:
    if value is _ABSENT or value is None:
        return ("", True)
    if isinstance(value, bool):
        return ("true" if value else "false", False)
    if isinstance(value, int | float):
        return (f"{value:g}" if float(value).is_integer() else repr(float(value)), False)
    return (str(value), False)


def _event_value(spec: Spec, e: Ev) -> tuple[str, bool]:
    if spec.breakdown == "channel":
        return (e.channel, False)
    if spec.breakdown.startswith("properties."):
        return _text(e.properties.get(spec.breakdown.removeprefix("properties."), _ABSENT))
    return ("", False)


def _clean(spec: Spec, seq: list[Ev], chain: tuple[int, ...]) -> bool:
    """The definition: an exclusion event (one that is not a step of the attempt) between the attempt's
    steps from_step and to_step, or after from_step within the window when the attempt stopped before
    to_step, rules the attempt out."""
    level, deadline = len(chain) - 1, us(seq[chain[0]]) + spec.window_us
    own = set(chain)
    for x in spec.exclusions:
        if x.from_step > level:
            continue
        low = chain[x.from_step]
        high = chain[x.to_step] if x.to_step <= level else len(seq)
        for j in range(low + 1, high):
            if j not in own and us(seq[j]) <= deadline and any(m(seq[j]) for m in x.matches):
                return False
    return True


def _attempts(
    spec: Spec, seq: list[Ev], start: int, matches: Callable[[Ev, int], bool]
) -> Iterable[tuple[int, ...]]:
    """Every attempt from `start`: increasing positions, each matching its step, within the window and the
    gaps (STRICT: consecutive positions)."""
    deadline = us(seq[start]) + spec.window_us
    stack: list[tuple[int, ...]] = [(start,)]
    while stack:
        chain = stack.pop()
        yield chain
        k = len(chain)
        if k == len(spec.steps):
            continue
        last = chain[-1]
        candidates = [last + 1] if spec.order == "strict" else range(last + 1, len(seq))
        for j in candidates:
            if j >= len(seq) or us(seq[j]) > deadline or not matches(seq[j], k):
                continue
            gap = us(seq[j]) - us(seq[last])
            step = spec.steps[k]
            if gap < step.min_gap_us or (step.max_gap_us is not None and gap > step.max_gap_us):
                continue
            stack.append((*chain, j))


def _in_range(spec: Spec, e: Ev) -> bool:
    t = us(e)
    return (spec.start_us is None or t >= spec.start_us) and (spec.end_us is None or t < spec.end_us)


def _best(
    spec: Spec, seq: list[Ev], matches: Callable[[Ev, int], bool]
) -> tuple[int, tuple[int, ...]] | None:
    """(furthest step, the reported attempt's positions), or None without a clean attempt."""
    best: tuple[int, int, tuple[int, ...]] | None = None  # (level, -start, chain)
    for s, e in enumerate(seq):
        if not _in_range(spec, e):
            continue
        if spec.order == "any":
            if not any(matches(e, b) for b in range(len(spec.steps))):
                continue
            deadline = us(e) + spec.window_us
            window = [j for j in range(s, len(seq)) if us(seq[j]) <= deadline]
            firsts = sorted(
                next(j for j in window if matches(seq[j], b))
                for b in range(len(spec.steps))
                if any(matches(seq[j], b) for j in window)
            )
            chain = tuple(firsts)
        else:
            if not matches(e, 0):
                continue
            clean = [c for c in _attempts(spec, seq, s, matches) if _clean(spec, seq, c)]
            if not clean:
                continue
            level = max(len(c) for c in clean) - 1
            chain = min((c for c in clean if len(c) == level + 1), key=lambda c: tuple(reversed(c)))
        candidate = (len(chain) - 1, -s, chain)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return None if best is None else (best[0], best[2])


def _traits(events: list[Ev], trait: str) -> dict[str, tuple[str, bool]]:
    """Each person's latest value of `trait`; of two identify events at one time, the one whose id's text is
    the larger (the store's EVENT_ORDER)."""
    latest: dict[str, tuple[tuple[int, str], Any]] = {}
    for e in events:
        newer = e.person not in latest or (us(e), e.event_id) > latest[e.person][0]
        if e.type == "identify" and trait in e.properties and newer:
            latest[e.person] = ((us(e), e.event_id), e.properties[trait])
    return {p: _text(v) for p, (_, v) in latest.items()}


def _carrying(
    spec: Spec, step_match: Callable[[Ev, int], bool], value: tuple[str, bool]
) -> Callable[[Ev, int], bool]:
    """EACH_STEP: only the events that carry `value` complete steps."""
    return lambda e, k: step_match(e, k) and _event_value(spec, e) == value


def units(spec: Spec, events: list[Ev]) -> list[Unit]:
    """Every counted (person, series value) with its best progress and step times."""

    def counted(e: Ev) -> bool:
        if spec.channels and e.channel not in spec.channels:
            return False
        return (
            spec.prop_filter is None or e.properties.get(spec.prop_filter[0], _ABSENT) == spec.prop_filter[1]
        )

    def step_match(e: Ev, k: int) -> bool:
        return any(m(e) for m in spec.steps[k].matches)

    traits = (
        _traits(events, spec.breakdown.removeprefix("person."))
        if spec.breakdown.startswith("person.")
        else {}
    )
    persons: dict[str, list[Ev]] = {}
    for e in events:
        if counted(e):
            persons.setdefault(e.person, []).append(e)
    found: list[Unit] = []
    for person, evs in persons.items():
        seq = sorted(evs, key=lambda e: (us(e), e.event_id))
        each = spec.attribution == "each_step" and (
            spec.breakdown == "channel" or spec.breakdown.startswith("properties.")
        )
        if each:
            values = sorted(
                {_event_value(spec, e) for e in seq if any(step_match(e, k) for k in range(len(spec.steps)))}
            )
            runs = [(v, _carrying(spec, step_match, v)) for v in values]
        else:
            runs = [(("", False), step_match)]
        for run_value, matches in runs:
            best = _best(spec, seq, matches)
            if best is None:
                continue
            level, chain = best
            labels = [run_value]
            if spec.breakdown == "segment":  # a unit in each segment the person is in, else one missing
                labels = [(name, False) for name, members in spec.segments if person in members] or [
                    ("", True)
                ]
            elif spec.breakdown.startswith("person."):
                labels = [traits.get(person, ("", True))]
            elif spec.breakdown and not each:
                labels = [
                    _event_value(spec, seq[chain[0] if spec.attribution == "first_step" else chain[-1]])
                ]
            times = tuple(us(seq[j]) for j in chain)
            found.extend(Unit(person, value, level, times) for value in labels)
    return found


@dataclass
class Times:
    values: list[int] = field(default_factory=list)

    def histogram(self, bounds: tuple[int, ...]) -> list[int]:
        counts = [0] * (len(bounds) + 1)
        for v in self.values:
            counts[sum(1 for b in bounds if v >= b)] += 1
        return counts

    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    def median(self) -> float | None:
        return float(statistics.median(self.values)) if self.values else None


@dataclass
class Expected:
    """One series: per step the persons who reached it and who dropped before it, and the times."""

    key: tuple[str, bool, bool]  # value, other, missing
    reached: list[list[str]]
    dropped: list[list[str]]
    step_times: list[Times]
    conversion: Times


def expected(spec: Spec, found: list[Unit]) -> list[Expected]:
    """The series as QueryFunnel returns them, the largest first and `other` last."""
    n = len(spec.steps)
    by_value: dict[tuple[str, bool], list[Unit]] = {}
    for u in found:
        by_value.setdefault(u.value, []).append(u)
    ranked = sorted(by_value, key=lambda v: (-len(by_value[v]), v))
    limit = spec.limit if spec.breakdown else 1
    if spec.breakdown == "segment":  # every listed segment keeps its series, and so do the persons outside
        limit = len(spec.segments) + 1
    groups: list[tuple[tuple[str, bool, bool], list[Unit]]] = [
        ((v[0], False, v[1]), by_value[v]) for v in ranked[:limit]
    ]
    rest = [u for v in ranked[limit:] for u in by_value[v]]
    if rest:
        groups.append((("", True, False), rest))
    result = []
    for key, members in groups:
        series = Expected(
            key, [[] for _ in range(n)], [[] for _ in range(n)], [Times() for _ in range(n)], Times()
        )
        for u in members:
            for k in range(u.level + 1):
                series.reached[k].append(u.person)
                if k:
                    series.step_times[k].values.append(u.times[k] - u.times[k - 1])
            if u.level + 1 < n:
                series.dropped[u.level + 1].append(u.person)
            else:
                series.conversion.values.append(u.times[-1] - u.times[0])
        result.append(series)
    return result
