"""Trends: the query, the store's cells, the store Protocol and the table of results. No protobuf, no SQL.

A trend measures events over time, as PostHog's Trends or Amplitude's event segmentation do: each series
matches events (any of its matchers) in the time range and measures them per period (days, Monday-based weeks
or months in the query's time zone) and over the whole range. store/trends.py aggregates per (series,
breakdown value, period) and per (series, breakdown value) in one ClickHouse statement; this module lists
the periods (empty ones included), dates them, marks the running ones and turns each cell into the series'
measure; the query's formulas (trend_formulas.py) then combine the series' results period by period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from wayline.common.time_zones import first_showing
from wayline_journeys.analytics import Breakdown, BreakdownDimension, EventMatcher, Population, SeriesKey
from wayline_journeys.retention import RetentionPeriod, period_start, period_starts
from wayline_journeys.trend_formulas import Formula

__all__ = [
    "MAX_TREND_PERIODS",
    "QUANTILES",
    "TrendCell",
    "TrendMath",
    "TrendPeriod",
    "TrendPoint",
    "TrendQuery",
    "TrendResult",
    "TrendSeries",
    "TrendsReadModel",
    "dated_periods",
    "formula_results",
    "hour_start",
    "period_before",
    "previous_query",
    "trend_periods",
    "trend_results",
]

MAX_TREND_PERIODS = 400


class TrendMath(Enum):
    TOTAL = "total"
    UNIQUE_PERSONS = "unique_persons"
    EVENTS_PER_PERSON = "events_per_person"
    SUM = "sum"
    AVERAGE = "average"
    MINIMUM = "minimum"
    MAXIMUM = "maximum"
    MEDIAN = "median"
    P90 = "p90"
    P99 = "p99"
    WEEKLY_ACTIVE_PERSONS = "weekly_active_persons"
    MONTHLY_ACTIVE_PERSONS = "monthly_active_persons"

    @property
    def of_property(self) -> bool:
        """Whether the math measures a numeric property (and needs one)."""
        return self not in (
            TrendMath.TOTAL,
            TrendMath.UNIQUE_PERSONS,
            TrendMath.EVENTS_PER_PERSON,
            TrendMath.WEEKLY_ACTIVE_PERSONS,
            TrendMath.MONTHLY_ACTIVE_PERSONS,
        )

    @property
    def counts_persons(self) -> bool:
        return self in (TrendMath.UNIQUE_PERSONS, TrendMath.EVENTS_PER_PERSON)

    @property
    def window_days(self) -> int | None:
        """The days a rolling math counts a person active for (the day of an event and those after it)."""
        return {TrendMath.WEEKLY_ACTIVE_PERSONS: 7, TrendMath.MONTHLY_ACTIVE_PERSONS: 30}.get(self)


class TrendPeriod(Enum):
    """The periods a trend counts in: hours of the local clock, or retention's calendar of days, weeks from
    Monday and months."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def calendar(self) -> RetentionPeriod | None:
        """The calendar period (None for hours, which are no calendar day)."""
        return None if self is TrendPeriod.HOUR else RetentionPeriod(self.value)


PeriodKey = date | datetime
"""Which period a cell is in: the local date a calendar period starts on, or the instant (UTC) an hour
starts."""


def hour_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the hour holding `moment` starts: when the local clock last showed a whole hour.

    Counting back the local minute and second finds it while the offset holds. When it changed by a fraction
    of an hour within the hour (Lord Howe's clocks move by 30 minutes; local mean time gave way to standard
    time by minutes and seconds), that lands on an instant the clock showed no whole hour (01:30 before the
    jump, for 02:40 after it), and counting back once more from there finds it: exact wherever such a change
    happens on a whole hour of the clock before it, which every change since 1900 does but Athens' of 1916
    (checked against a second-by-second walk of every zone's changes). The store counts back the same way
    (store/trends.py), so both agree in every zone."""
    return _count_back(_count_back(moment, zone), zone)


def _count_back(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    back = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    return (moment - back).astimezone(UTC)


def _next_hour_start(start: datetime, zone: ZoneInfo) -> datetime:
    """The instant the hour after the one starting at `start` starts. An hour of the clock lasts an hour of
    time but where the offset changes by a fraction of an hour, up to 90 minutes: the first whole hour after
    `start` is found by looking later until the hour holding the instant looked at is another."""
    later = start + timedelta(hours=1)
    while (following := hour_start(later, zone)) <= start:
        later += timedelta(minutes=15)
    return following


# The levels of the percentile maths.
QUANTILES: dict[TrendMath, float] = {TrendMath.MEDIAN: 0.5, TrendMath.P90: 0.9, TrendMath.P99: 0.99}


@dataclass(frozen=True)
class TrendSeries:
    """Events matching any of `matchers` (an empty matcher matches every event), measured by `math`; for a
    property math, the numbers at `property`; with `currency`, only events with revenue in it."""

    label: str
    matchers: tuple[EventMatcher, ...] = (EventMatcher(),)
    math: TrendMath = TrendMath.TOTAL
    property: str = ""
    currency: str = ""


@dataclass(frozen=True)
class TrendQuery:
    tenant: str
    series: tuple[TrendSeries, ...]
    start: datetime
    end: datetime
    period: TrendPeriod = TrendPeriod.WEEK
    time_zone: str = "UTC"
    breakdown: Breakdown = field(default_factory=Breakdown)
    population: Population = field(default_factory=Population)
    formulas: tuple[Formula, ...] = ()  # computed from the series' results, not by the store
    compare_to_previous: bool = False  # also measure previous_query's range

    @property
    def counts_persons(self) -> bool:
        return any(s.math.counts_persons for s in self.series)

    @property
    def has_quantiles(self) -> bool:
        return any(s.math in QUANTILES for s in self.series)

    @property
    def rolling(self) -> tuple[int, ...]:
        """The indexes of the series with a rolling math (weekly or monthly active persons)."""
        return tuple(i for i, s in enumerate(self.series) if s.math.window_days is not None)


@dataclass(frozen=True)
class TrendCell:
    """A store row: the matching events of series `series_index` with breakdown value `key` in the period
    starting on local date `period` (None: the whole range). Only what the series' math needs is filled in
    (`persons` for the person maths, `quantile` for a percentile: the series' own); the other fields keep
    their defaults, and the value aggregates are None without values."""

    series_index: int
    key: SeriesKey
    period: PeriodKey | None
    events: int
    persons: int = 0
    values: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    quantile: float | None = None


@dataclass(frozen=True)
class TrendPoint:
    period_start: datetime
    value: float | None
    events: int
    complete: bool


@dataclass(frozen=True)
class TrendResult:
    series_index: int
    label: str
    key: SeriesKey
    points: tuple[TrendPoint, ...]
    total: float | None
    events: int


class TrendsReadModel(Protocol):
    def cells(self, query: TrendQuery) -> list[TrendCell]:
        """The cells of every series and breakdown value holding a matching event (breakdown limit applied):
        one per period with events and one for the whole range. A rolling series' period cells count in
        `persons` its active persons that day, with a cell for every day some are."""
        ...


def _hour_starts(start: datetime, end: datetime, zone: ZoneInfo, limit: int) -> list[datetime]:
    found = [hour_start(start, zone)]
    while len(found) <= limit:
        following = _next_hour_start(found[-1], zone)
        if following >= end:
            break
        found.append(following)
    return found


def trend_periods(query: TrendQuery) -> list[PeriodKey]:
    """The keys of the query's periods, oldest first: the local dates calendar periods begin on, or the
    instants hours begin at; more than MAX_TREND_PERIODS when too many."""
    zone = ZoneInfo(query.time_zone)
    calendar = query.period.calendar
    if calendar is None:
        return list(_hour_starts(query.start, query.end, zone, MAX_TREND_PERIODS))
    return list(period_starts(query.start, query.end, calendar, zone, MAX_TREND_PERIODS))


def _is_month_start(local: datetime) -> bool:
    return local.day == 1 and local.time() == time(0)


def previous_query(query: TrendQuery) -> TrendQuery:
    """The query over the range compared with the query's: as long on the zone's clock, ending where the
    query's starts (14 local days before 14 local days, across a DST change too); a range of whole calendar
    months by month takes as many whole months before it (September to November compares with June to
    August, not with 2 June to 31 August)."""
    zone = ZoneInfo(query.time_zone)
    start = query.start.astimezone(zone).replace(tzinfo=None)
    end = query.end.astimezone(zone).replace(tzinfo=None)
    if query.period is TrendPeriod.MONTH and _is_month_start(start) and _is_month_start(end):
        months = (end.year - start.year) * 12 + end.month - start.month
        first = start.year * 12 + start.month - 1 - months
        earlier = start.replace(year=first // 12, month=first % 12 + 1)
    else:
        earlier = start - (end - start)
    begins = first_showing(earlier.date(), earlier.time(), zone)  # a time the clocks skip: as they jump
    return replace(query, start=begins, end=query.start, compare_to_previous=False)


def _bounds(
    keys: Sequence[PeriodKey], period: TrendPeriod, zone: ZoneInfo
) -> tuple[list[datetime], datetime]:
    """The instants the periods start at, and the one the last ends at."""
    calendar = period.calendar
    if calendar is None:
        starts = [k for k in keys if isinstance(k, datetime)]
        return starts, _next_hour_start(starts[-1], zone)
    days = [k for k in keys if not isinstance(k, datetime)]
    return [period_start(d, calendar, 0, zone) for d in days], period_start(days[-1], calendar, 1, zone)


def dated_periods(query: TrendQuery, now: datetime) -> tuple[list[PeriodKey], list[datetime], list[bool]]:
    """The keys of the query's periods, the instants they start at, and whether each is complete: a period
    is still running until it ends, unless the range ended before `now` (an unset end is now)."""
    starts = trend_periods(query)
    instants, last_end = _bounds(starts, query.period, ZoneInfo(query.time_zone))
    ends = [*instants[1:], last_end]
    return starts, instants, [end <= now or query.end < now for end in ends]


def period_before(query: TrendQuery) -> tuple[PeriodKey, datetime, datetime]:
    """The key of the whole period before the query's first, the instant it starts at and the instant the
    first starts at (before the range's start when the range cuts it)."""
    zone = ZoneInfo(query.time_zone)
    instants, _ = _bounds(trend_periods(query)[:1], query.period, zone)
    moment = instants[0] - timedelta(microseconds=1)
    calendar = query.period.calendar
    if calendar is None:
        before = hour_start(moment, zone)
        return before, before, instants[0]
    day = period_starts(moment, instants[0], calendar, zone, 1)[0]
    return day, period_start(day, calendar, 0, zone), instants[0]


def measure(series: TrendSeries, cell: TrendCell | None) -> float | None:
    """The series' measure of a cell (None: no cell, an empty period)."""
    events = cell.events if cell is not None else 0
    if series.math is TrendMath.TOTAL:
        return float(events)
    if series.math is TrendMath.UNIQUE_PERSONS or series.math.window_days is not None:
        return float(cell.persons) if cell is not None else 0.0
    if series.math is TrendMath.EVENTS_PER_PERSON:
        return events / cell.persons if cell is not None and cell.persons else 0.0
    if series.math is TrendMath.SUM:
        return cell.total if cell is not None else 0.0
    if cell is None or not cell.values:
        return None
    if series.math is TrendMath.AVERAGE:
        return cell.total / cell.values
    if series.math is TrendMath.MINIMUM:
        return cell.minimum
    if series.math is TrendMath.MAXIMUM:
        return cell.maximum
    return cell.quantile


def _ranked_keys(cells: Sequence[TrendCell]) -> list[SeriesKey]:
    """Breakdown values by matching events over every series (as the store ranked them), `other` last."""
    events: dict[SeriesKey, int] = defaultdict(int)
    for c in cells:
        if c.period is None:
            events[c.key] += c.events
    return sorted(events, key=lambda k: (k.other, -events[k], k.value, k.missing))


def trend_results(cells: Sequence[TrendCell], query: TrendQuery, now: datetime) -> list[TrendResult]:
    """One result per series and breakdown value with events (per series without breakdown, even empty),
    in series order and by value from the largest; one point per period, empty periods included."""
    starts, instants, complete = dated_periods(query, now)
    found = {(c.series_index, c.key, c.period): c for c in cells}
    keys = _ranked_keys(cells)
    if query.breakdown.dimension is BreakdownDimension.NONE:
        keys = [SeriesKey()]
    results: list[TrendResult] = []
    for index, series in enumerate(query.series):
        for key in keys:
            whole = found.get((index, key, None))
            if whole is None and query.breakdown.dimension is not BreakdownDimension.NONE:
                continue
            points = []
            for start, instant, done in zip(starts, instants, complete, strict=True):
                cell = found.get((index, key, start))
                points.append(TrendPoint(instant, measure(series, cell), cell.events if cell else 0, done))
            # A rolling math's whole range is its last day (a day's persons already look back).
            total = points[-1].value if series.math.window_days is not None else measure(series, whole)
            results.append(
                TrendResult(
                    index, series.label, key, tuple(points), total, whole.events if whole is not None else 0
                )
            )
    return results


def formula_results(query: TrendQuery, results: Sequence[TrendResult]) -> list[TrendResult]:
    """One result per formula of the query and breakdown value that a series it names has a result for
    (without breakdown, one per formula), in formula order and by value in the order of `results`. A series
    without a result for that value takes what an empty period measures (0 for counts and sums, no value
    otherwise). `series_index` is the formula's index; event counts are 0 (a formula counts no events)."""
    found: dict[tuple[int, SeriesKey], TrendResult] = {(r.series_index, r.key): r for r in results}
    keys = list(dict.fromkeys(r.key for r in results))
    if query.breakdown.dimension is BreakdownDimension.NONE:
        keys = [SeriesKey()]
    periods = [p.period_start for p in results[0].points] if results else []
    complete = [p.complete for p in results[0].points] if results else []
    empty = [measure(s, None) for s in query.series]
    computed: list[TrendResult] = []
    for index, formula in enumerate(query.formulas):
        for key in keys:
            if not any((i, key) in found for i in formula.series):
                continue
            lines = [found.get((i, key)) for i in range(len(query.series))]
            points = []
            for n, (start, done) in enumerate(zip(periods, complete, strict=True)):
                values = [line.points[n].value if line else empty[i] for i, line in enumerate(lines)]
                points.append(TrendPoint(start, formula.evaluate(values), 0, done))
            totals = [line.total if line else empty[i] for i, line in enumerate(lines)]
            computed.append(
                TrendResult(index, formula.label, key, tuple(points), formula.evaluate(totals), 0)
            )
    return computed
