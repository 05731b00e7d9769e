"""Funnels: the query, its result, and the store Protocol (QueryFunnel, ListFunnelPersons). Free of protobuf
and SQL; `store/funnel_sql.py` holds the walk in ClickHouse and docs/funnels.md the semantics it computes.

Times are whole microseconds (the events' resolution), so that results compare exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from wayline_journeys.analytics import Breakdown, EventMatcher, Population, SeriesKey, TimeRange
from wayline_journeys.retention import RetentionPeriod, period_start, period_starts

__all__ = [
    "AUTOMATIC_BOUNDS_US",
    "DAY_US",
    "MAX_TREND_PERIODS",
    "Attribution",
    "FunnelExclusion",
    "FunnelOrder",
    "FunnelQuery",
    "FunnelResult",
    "FunnelSeries",
    "FunnelStep",
    "FunnelStore",
    "FunnelTrend",
    "Outcome",
    "PersonsPage",
    "StepStats",
    "TimeStats",
    "TrendPoint",
    "TrendRow",
    "assemble",
    "automatic_bounds",
    "trend_periods",
    "with_trend",
]

MAX_TREND_PERIODS = 400
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US

# The automatic time-to-convert bucket bounds (upper bounds), of which those shorter than the window apply.
AUTOMATIC_BOUNDS_US: tuple[int, ...] = (
    *(m * MINUTE_US for m in (1, 5, 15, 30)),
    *(h * HOUR_US for h in (1, 3, 6, 12)),
    *(d * DAY_US for d in (1, 2, 3, 5, 7, 14, 30, 60, 90, 180)),
)


def automatic_bounds(window_us: int) -> tuple[int, ...]:
    return tuple(b for b in AUTOMATIC_BOUNDS_US if b < window_us)


class FunnelOrder(Enum):
    ORDERED = "ordered"
    STRICT = "strict"
    ANY = "any"


class Attribution(Enum):
    FIRST_STEP = "first_step"
    LAST_STEP = "last_step"
    EACH_STEP = "each_step"


class Outcome(Enum):
    CONVERTED = "converted"
    DROPPED = "dropped"


@dataclass(frozen=True)
class FunnelStep:
    """A step: an event matching any of `matchers` completes it; gaps (microseconds) bound the time from the
    attempt's previous step (ignored on the first step; None = no maximum)."""

    label: str
    matchers: tuple[EventMatcher, ...]
    min_gap_us: int = 0
    max_gap_us: int | None = None


@dataclass(frozen=True)
class FunnelExclusion:
    """An event matching any of `matchers` between the attempt's steps `from_step` and `to_step` (or after
    `from_step` within the window, when the attempt did not reach `to_step`) rules the attempt out."""

    matchers: tuple[EventMatcher, ...]
    from_step: int
    to_step: int


@dataclass(frozen=True)
class FunnelTrend:
    """The funnel per period of the time range: periods of `period` beginning at local midnight in
    `time_zone`, over [start, end) (the converter fills in an unset end with now)."""

    period: RetentionPeriod
    time_zone: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FunnelQuery:
    tenant: str
    steps: tuple[FunnelStep, ...]
    order: FunnelOrder = FunnelOrder.ORDERED
    window_us: int = 14 * DAY_US
    exclusions: tuple[FunnelExclusion, ...] = ()
    time_range: TimeRange = field(default_factory=TimeRange)
    breakdown: Breakdown = field(default_factory=Breakdown)
    attribution: Attribution = Attribution.FIRST_STEP
    population: Population = field(default_factory=Population)
    event_filter: EventMatcher = field(default_factory=EventMatcher)
    """Which events count at all (channels and event property filters only)."""
    sample_size: int = 0
    bounds_us: tuple[int, ...] = ()
    """The histogram's bucket upper bounds, increasing (the converter fills in the automatic ones)."""
    trend: FunnelTrend | None = None

    def open_exclusions(self, level: int) -> int:
        """The bitmask of the exclusions that an attempt sitting at step `level` is exposed to."""
        return sum(1 << i for i, x in enumerate(self.exclusions) if x.from_step <= level < x.to_step)


@dataclass(frozen=True)
class TimeStats:
    """Times to convert (microseconds) over the persons who converted: mean and median (None without any),
    and the histogram's counts (one per bound and a last, open bucket)."""

    mean_us: float | None = None
    median_us: float | None = None
    histogram: tuple[int, ...] = ()


@dataclass(frozen=True)
class StepStats:
    count: int = 0
    times: TimeStats = field(default_factory=TimeStats)
    converted_sample: tuple[str, ...] = ()
    dropped_sample: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrendPoint:
    """The funnel of the persons who started an attempt in one period: how many reached each step."""

    period_start: datetime
    step_counts: tuple[int, ...]
    complete: bool


@dataclass(frozen=True)
class FunnelSeries:
    key: SeriesKey
    steps: tuple[StepStats, ...]
    conversion: TimeStats
    """First step to last, over the persons who completed the funnel."""
    trend: tuple[TrendPoint, ...] = ()


@dataclass(frozen=True)
class TrendRow:
    """How many units of one breakdown value that started in the period beginning on local date `period`
    went no further than step `level`."""

    value: tuple[str, bool]
    period: date
    level: int
    units: int


@dataclass(frozen=True)
class FunnelResult:
    series: tuple[FunnelSeries, ...]


@dataclass(frozen=True)
class PersonsPage:
    """Which persons of a funnel to list: `step` reached (CONVERTED) or dropped before (DROPPED), in one
    series or all (None), after `after` in ascending order."""

    step: int
    outcome: Outcome
    series: SeriesKey | None
    after: str
    limit: int


class FunnelStore(Protocol):
    def query(self, query: FunnelQuery) -> Sequence[tuple[SeriesKey, int, StepStats]]:
        """(series, step index, stats) for every step any person of the series reached or dropped before;
        index len(steps) carries the whole-funnel conversion times of the persons who completed it."""
        ...

    def persons(self, query: FunnelQuery, page: PersonsPage) -> list[str]:
        """Up to `page.limit` person ids after `page.after`, ascending."""
        ...

    def trend(self, query: FunnelQuery) -> Sequence[TrendRow]:
        """Per breakdown value, period of `query.trend` and furthest step, how many units started an
        attempt in that period (each with its best attempt started there)."""
        ...


def assemble(query: FunnelQuery, rows: Sequence[tuple[SeriesKey, int, StepStats]]) -> FunnelResult:
    """The store's rows as series, the largest first (by the first step's count, then by key), `other`
    last; steps nobody reached count zero."""
    n = len(query.steps)
    by_series: dict[SeriesKey, dict[int, StepStats]] = {}
    for key, step, stats in rows:
        by_series.setdefault(key, {})[step] = stats
    if not by_series:
        by_series[SeriesKey()] = {}
    series = [
        FunnelSeries(
            key,
            tuple(steps.get(i, StepStats()) for i in range(n)),
            steps.get(n, StepStats()).times,
        )
        for key, steps in by_series.items()
    ]
    series.sort(key=lambda s: (s.key.other, -s.steps[0].count, s.key.value, s.key.missing))
    return FunnelResult(tuple(series))


def trend_periods(trend: FunnelTrend) -> list[date]:
    """The local dates on which the trend's periods begin; more than MAX_TREND_PERIODS when too many."""
    return period_starts(trend.start, trend.end, trend.period, ZoneInfo(trend.time_zone), MAX_TREND_PERIODS)


def with_trend(
    query: FunnelQuery, result: FunnelResult, rows: Sequence[TrendRow], now: datetime
) -> FunnelResult:
    """`result` with each series' trend: the store's rows counted into the result's series (a value that
    is not one of them is in `other`), one point per period, zeros where nobody entered."""
    trend = query.trend
    if trend is None:
        return result
    zone = ZoneInfo(trend.time_zone)
    n = len(query.steps)
    keys = {(s.key.value, s.key.missing): s.key for s in result.series if not s.key.other}
    other = next((s.key for s in result.series if s.key.other), None)
    counts: dict[tuple[SeriesKey, date], list[int]] = {}
    for row in rows:
        key = keys.get(row.value, other)
        if key is None:
            continue  # not in the funnel's series (it entered none of the whole range's)
        levels = counts.setdefault((key, row.period), [0] * n)
        for k in range(min(row.level, n - 1) + 1):
            levels[k] += row.units
    periods = trend_periods(trend)
    ends = [period_start(p, trend.period, 1, zone) for p in periods]
    window = query.window_us / 1_000_000
    series = []
    for found in result.series:
        points = tuple(
            TrendPoint(
                period_start(local, trend.period, 0, zone),
                tuple(counts.get((found.key, local), [0] * n)),
                min(end, trend.end).timestamp() + window <= now.astimezone(UTC).timestamp(),
            )
            for local, end in zip(periods, ends, strict=True)
        )
        series.append(replace(found, trend=points))
    return FunnelResult(tuple(series))
