"""Path analysis: the query, its result, and the store Protocol. Free of protobuf and of SQL.

A person's steps (track, page and screen events passing the channel and name filters, in the range, by time
then event id) are split into sessions where two consecutive steps are more than `session_gap` apart. Each
session gives at most one path:
- a start anchor starts the path at the session's first matching event (no match, no path);
- an end anchor ends it at the first matching event after the start (no match, no path); without a start
  anchor the path is the steps leading up to and including it;
- `collapse_repeats` then keeps the first of each run of identical steps (label and channel);
- `depth` keeps the first steps, or the last ones when only the end is anchored.
A node is (position, label, channel): a channel jump is an edge between nodes of two channels, and a loop
is a label seen again at a later position (an edge counts, per path, whether its target's label was already
on the path, whatever the channel). store/paths.py does all of this in one ClickHouse query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from wayline_journeys.analytics import Breakdown, EventMatcher, Population, SeriesKey, TimeRange

__all__ = [
    "DEFAULT_SESSION_GAP",
    "STEP_TYPES",
    "CleaningRule",
    "EdgeCursor",
    "EdgePage",
    "InvalidCleaningRules",
    "PathEdge",
    "PathNode",
    "PathSequence",
    "PathStep",
    "PathsQuery",
    "PathsReadModel",
    "PathsSeries",
    "SeriesKey",
    "node_id",
]

STEP_TYPES = ("track", "page", "screen")
DEFAULT_SESSION_GAP = timedelta(minutes=30)


@dataclass(frozen=True)
class CleaningRule:
    """An RE2 regex and its replacement in ClickHouse's syntax (`\\1` for a group; converters translate the
    contract's `$1`)."""

    regex: str
    replacement: str


@dataclass(frozen=True)
class PathsQuery:
    tenant: str
    start_event: EventMatcher | None = None
    end_event: EventMatcher | None = None
    depth: int = 5
    cleaning_rules: tuple[CleaningRule, ...] = ()
    session_gap: timedelta = DEFAULT_SESSION_GAP
    node_property: str = ""
    collapse_repeats: bool = False
    channels: tuple[str, ...] = ()
    exclude_event_names: tuple[str, ...] = ()
    time_range: TimeRange = field(default_factory=TimeRange)
    breakdown: Breakdown = field(default_factory=Breakdown)
    population: Population = field(default_factory=Population)
    top_paths_limit: int = 20
    edge_limit: int = 100
    min_edge_count: int = 1


@dataclass(frozen=True, order=True)
class PathStep:
    label: str
    channel: str


@dataclass(frozen=True)
class PathSequence:
    steps: tuple[PathStep, ...]
    count: int
    person_count: int


@dataclass(frozen=True)
class PathNode:
    position: int
    step: PathStep
    count: int
    drop_off_count: int

    @property
    def id(self) -> str:
        return node_id(self.position, self.step)


@dataclass(frozen=True)
class PathEdge:
    position: int  # of the source node; the target is at position + 1
    source: PathStep
    target: PathStep
    count: int
    average_gap: timedelta
    loop_count: int = 0  # of the paths taking it, those that had already been to the target's label

    @property
    def cursor(self) -> EdgeCursor:
        return EdgeCursor(
            self.count,
            self.position,
            self.source.label,
            self.source.channel,
            self.target.label,
            self.target.channel,
        )


@dataclass(frozen=True)
class EdgeCursor:
    """Where a page of edges ends, in the edge order: count descending, then position, source label and
    channel, target label and channel ascending."""

    count: int
    position: int
    source_label: str
    source_channel: str
    target_label: str
    target_channel: str


@dataclass(frozen=True)
class PathsSeries:
    key: SeriesKey
    path_count: int
    person_count: int
    top_paths: tuple[PathSequence, ...]
    nodes: tuple[PathNode, ...]
    edges: tuple[PathEdge, ...]
    edge_count: int  # every edge of the series with at least min_edge_count paths

    @property
    def more_edges(self) -> bool:
        return self.edge_count > len(self.edges)


@dataclass(frozen=True)
class EdgePage:
    edges: tuple[PathEdge, ...]
    nodes: tuple[PathNode, ...]
    total_size: int
    more: bool


@dataclass(frozen=True)
class PersonsPage:
    """Which persons ListPathPersons lists: those with a path of `series` (None: any series) that has `step`
    at `position` (and, with `target`, `target` at the next position), after the id `after`, at most
    `limit`."""

    series: SeriesKey | None
    position: int
    step: PathStep
    target: PathStep | None
    after: str
    limit: int


class InvalidCleaningRules(ValueError):
    """Cleaning rules RE2 refuses: (rule index, `regex` or `label`, what is wrong) for each."""

    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        super().__init__(f"{len(problems)} invalid cleaning rules")
        self.problems = problems


def node_id(position: int, step: PathStep) -> str:
    """`{position}:{channel}:{label}`: unique (neither a position nor a channel holds a colon) and the same
    in every response to the same query."""
    return f"{position}:{step.channel}:{step.label}"


class PathsReadModel(Protocol):
    def query(self, query: PathsQuery) -> list[PathsSeries]:
        """Every series, the largest first and `other` last, each with its first `edge_limit` edges."""
        ...

    def edges(self, query: PathsQuery, series: SeriesKey, after: EdgeCursor | None, limit: int) -> EdgePage:
        """At most `limit` edges of `series` after `after`, with the nodes they connect."""
        ...

    def persons(self, query: PathsQuery, page: PersonsPage) -> list[str]:
        """The person ids of `page`, ascending, each once."""
        ...
