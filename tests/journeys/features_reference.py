"""A plain-Python reference of features, labels, sampling and splits (the contract's comments in
feature.proto, training_set.proto and ExportTrainingSetRequest), over events read as current persons.
Written from the contract, not from the service's code: it scans every event for every value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.journeys.filter_reference import MISSING, is_number, json_at

DAY_US = 86_400_000_000
Value = float | str | bool | None


@dataclass(frozen=True)
class Ev:
    person: str
    event_id: str
    name: str
    channel: str
    ts: int  # timestamp, epoch microseconds
    rs: int  # received_at, epoch microseconds
    type: str = "track"
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    revenue: float | None = None


def visible(e: Ev, t: int, cut_off: int) -> bool:
    """Happened before t, received before t and before the data cut-off."""
    return e.ts < t and e.rs < min(t, cut_off)


def lookup(e: Ev, path: str) -> Any:
    """The value at `path` (`properties.a.b` or `revenue`), or MISSING."""
    if path == "revenue":
        return MISSING if e.revenue is None else e.revenue
    return json_at(e.properties, path.removeprefix("properties."))


def canonical(v: Any) -> Value:
    """A JSON value as a feature value: numbers as floats (-0 is 0), objects and lists as compact sorted
    JSON."""
    if is_number(v):
        return float(v) + 0.0
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return v  # type: ignore[no-any-return]


def ordered_sum(values: list[float]) -> float:
    """Left to right in ascending order, as the contract fixes it."""
    total = 0.0
    for v in sorted(values):
        total += v
    return total


@dataclass(frozen=True)
class Feature:
    kind: str  # the FeatureAggregation name without prefix, lower case
    matches: Callable[[Ev], bool] = lambda e: True
    path: str = ""
    window_us: int | None = None
    default: Value = None


def feature(f: Feature, events: list[Ev], person: str, t: int, cut_off: int) -> Value:
    mine = [e for e in events if e.person == person and visible(e, t, cut_off)]
    if f.kind == "person_property":
        key = f.path.removeprefix("person.")
        carrying = [e for e in mine if e.type == "identify" and key in e.properties]
        if not carrying:
            return f.default
        latest = max(carrying, key=lambda e: (e.ts, e.event_id))
        value = latest.properties[key]
        return f.default if value is None else canonical(value)
    counted = [e for e in mine if f.matches(e) and (f.window_us is None or e.ts >= t - f.window_us)]
    if f.kind in ("sum", "average", "min", "max"):
        numbers = [float(v) for e in counted if is_number(v := lookup(e, f.path))]
        if not numbers:
            return f.default
        return {
            "sum": lambda: ordered_sum(numbers),
            "average": lambda: ordered_sum(numbers) / len(numbers),
            "min": lambda: min(numbers),
            "max": lambda: max(numbers),
        }[f.kind]()
    if f.kind in ("count_distinct", "first_value", "last_value"):
        valued = [(e, v) for e in counted if (v := lookup(e, f.path)) is not MISSING and v is not None]
        if not valued:
            return f.default
        if f.kind == "count_distinct":
            return float(len({json.dumps(canonical(v)) for _, v in valued}))
        pick = min if f.kind == "first_value" else max
        return canonical(pick(valued, key=lambda ev: (ev[0].ts, ev[0].event_id))[1])
    if not counted:
        return f.default
    return {
        "count": lambda: float(len(counted)),
        "days_since_first": lambda: (t - min(e.ts for e in counted)) / DAY_US,
        "days_since_last": lambda: (t - max(e.ts for e in counted)) / DAY_US,
        "active_days": lambda: float(len({datetime.fromtimestamp(e.ts / 1e6, UTC).date() for e in counted})),
    }[f.kind]()


@dataclass(frozen=True)
class Label:
    kind: str  # binary | count | sum
    horizon_us: int
    matches: Callable[[Ev], bool] = lambda e: True
    path: str = ""


def label(lab: Label, events: list[Ev], person: str, t: int, cut_off: int) -> Value:
    hits = [
        e
        for e in events
        if e.person == person and lab.matches(e) and t <= e.ts < t + lab.horizon_us and e.rs < cut_off
    ]
    if lab.kind == "binary":
        return bool(hits)
    if lab.kind == "count":
        return float(len(hits))
    return ordered_sum([float(v) for e in hits if is_number(v := lookup(e, lab.path))])


def hash_fraction(salt: str, person: str) -> float:
    """The top 53 bits of SHA-256(salt + person) as a fraction of 2**53."""
    top = int(hashlib.sha256((salt + person).encode()).hexdigest()[:16], 16) >> 11
    return top / 2**53


def split(person: str, validation: float, test: float) -> str:
    if validation == 0 and test == 0:
        return "UNSPECIFIED"
    u = hash_fraction("split:", person)
    return "VALIDATION" if u < validation else "TEST" if u < validation + test else "TRAIN"


def sampled(person: str, rate: float) -> bool:
    return rate in (0, 1) or hash_fraction("sample:", person) < rate


def snapshot_observations(
    events: list[Ev], times: list[int], cut_off: int, rate: float
) -> list[tuple[str, int]]:
    """(person, t) for every sampled person with an event visible at t, by (t, person)."""
    persons = {e.person for e in events}
    found = [
        (p, t)
        for t in times
        for p in persons
        if sampled(p, rate) and any(e.person == p and e.rs < cut_off and max(e.ts, e.rs) < t for e in events)
    ]
    return sorted(found, key=lambda o: (o[1], o[0]))


def anchor_observations(
    events: list[Ev], matches: Callable[[Ev], bool], start: int, end: int, cut_off: int, rate: float
) -> list[tuple[str, int]]:
    anchors = [
        e for e in events if matches(e) and start <= e.ts < end and e.rs < cut_off and sampled(e.person, rate)
    ]
    return [(e.person, e.ts) for e in sorted(anchors, key=lambda e: (e.ts, e.person, e.event_id))]


def same(a: Value, b: Value) -> bool:
    """Equal to the bit: sums and means add in a fixed order, so there is no rounding to forgive."""
    return type(a) is type(b) and a == b
