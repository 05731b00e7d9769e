"""A plain-Python path analysis, written from the contract (QueryPathsRequest, PathStep.label), to hold the
ClickHouse one to: steps, sessions split by the gap, anchors, collapse_repeats, depth, cleaning rules,
exclusions of names and channels, breakdown by channel or property with `other`, or by segment (a person in
several segments counts in each)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.journeys.event_log import Ev

__all__ = ["Expected", "RefQuery", "Series", "reference_paths", "text_of"]

Step = tuple[str, str]  # (label, channel)


@dataclass(frozen=True)
class RefQuery:
    start_name: str = ""  # anchors match by event name, and by channel when given
    start_channel: str = ""
    end_name: str = ""
    end_channel: str = ""
    depth: int = 5
    rules: tuple[tuple[str, str], ...] = ()  # (regex, contract replacement with $n)
    gap: timedelta = timedelta(minutes=30)
    node_property: str = ""  # properties.<key> only
    collapse: bool = False
    channels: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    breakdown: str = ""  # "", "channel", "properties.<key>" or "segment"
    segments: tuple[tuple[str, frozenset[str]], ...] = ()  # for "segment": (name, its current members)
    limit: int = 10
    min_edge_count: int = 1


@dataclass
class Series:
    path_count: int = 0
    persons: set[str] = field(default_factory=set)
    paths: Counter[tuple[Step, ...]] = field(default_factory=Counter)
    path_persons: dict[tuple[Step, ...], set[str]] = field(default_factory=lambda: defaultdict(set))
    nodes: dict[tuple[int, Step], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # (position, source, target) → [count, gap sum in µs, loops: paths already at the target's label]
    edges: dict[tuple[int, Step, Step], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )


Expected = dict[tuple[str, bool, bool], Series]  # (value, other, missing) → series


def text_of(value: Any) -> str:
    """A property value as text, as BreakdownValue and PathStep.label have it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _python_replacement(label: str) -> str:
    return re.sub(r"\$([0-9])", r"\\g<\1>", label.replace("\\", "\\\\"))


def label_of(e: Ev, q: RefQuery) -> str:
    label = e.page_path if e.type == "page" and e.page_path else e.name
    if q.node_property:
        value = e.properties.get(q.node_property.removeprefix("properties."))
        if value is not None:
            label = text_of(value)
    label = label or e.type
    for regex, replacement in q.rules:
        label = re.sub(regex, _python_replacement(replacement), label)
    return label


def _matches(e: Ev, name: str, channel: str) -> bool:
    return e.name == name and (not channel or e.channel == channel)


def _sessions(steps: list[Ev], gap: timedelta) -> list[list[Ev]]:
    sessions: list[list[Ev]] = []
    for e in steps:
        if sessions and e.at - sessions[-1][-1].at <= gap:
            sessions[-1].append(e)
        else:
            sessions.append([e])
    return sessions


def _path(session: list[Ev], q: RefQuery) -> list[Ev] | None:
    path = session
    if q.start_name:
        starts = [i for i, e in enumerate(path) if _matches(e, q.start_name, q.start_channel)]
        if not starts:
            return None
        path = path[starts[0] :]
    if q.end_name:
        first = 1 if q.start_name else 0
        ends = [i for i, e in enumerate(path) if i >= first and _matches(e, q.end_name, q.end_channel)]
        if not ends:
            return None
        path = path[: ends[0] + 1]
    if q.collapse:
        kept = [path[0]]
        for e in path[1:]:
            if (label_of(e, q), e.channel) != (label_of(kept[-1], q), kept[-1].channel):
                kept.append(e)
        path = kept
    if q.end_name and not q.start_name:
        return path[-q.depth :]
    return path[: q.depth]


def _keys(first: Ev, q: RefQuery) -> list[tuple[str, bool]]:
    """The series values of a path starting with the event `first`."""
    if q.breakdown == "segment":
        return [(name, False) for name, members in q.segments if first.person in members] or [("", True)]
    if q.breakdown == "channel":
        return [(first.channel, False)]
    if q.breakdown:
        value = first.properties.get(q.breakdown.removeprefix("properties."))
        return [("", True) if value is None else (text_of(value), False)]
    return [("", False)]


def reference_paths(log: list[Ev], q: RefQuery) -> Expected:
    by_person: dict[str, list[Ev]] = defaultdict(list)
    for e in log:
        if (
            e.type in ("track", "page", "screen")
            and (not q.channels or e.channel in q.channels)
            and e.name not in q.exclude
            and (q.start is None or e.at >= q.start)
            and (q.end is None or e.at < q.end)
        ):
            by_person[e.person].append(e)
    found: list[tuple[tuple[str, bool], str, list[Ev]]] = []
    for person, events in by_person.items():
        events.sort(key=lambda e: (e.at, e.event_id))
        for session in _sessions(events, q.gap):
            path = _path(session, q)
            if path:
                found.extend((key, person, path) for key in _keys(path[0], q))
    totals = Counter(key for key, _, _ in found)
    ranked = sorted(totals, key=lambda k: (-totals[k], k[0], k[1]))
    kept = set(ranked[: len(q.segments) + 1 if q.breakdown == "segment" else q.limit])
    expected: Expected = defaultdict(Series)
    for (value, missing), person, path in found:
        series = expected[(value, False, missing) if (value, missing) in kept else ("", True, False)]
        steps = tuple((label_of(e, q), e.channel) for e in path)
        series.path_count += 1
        series.persons.add(person)
        series.paths[steps] += 1
        series.path_persons[steps].add(person)
        for i, step in enumerate(steps):
            series.nodes[(i, step)][0] += 1
            series.nodes[(i, step)][1] += i == len(steps) - 1
        for i in range(len(steps) - 1):
            edge = series.edges[(i, steps[i], steps[i + 1])]
            edge[0] += 1
            edge[1] += (path[i + 1].at - path[i].at) // timedelta(microseconds=1)
            edge[2] += steps[i + 1][0] in {label for label, _ in steps[: i + 1]}
    return dict(expected)
