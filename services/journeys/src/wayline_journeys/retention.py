"""Retention: the query, the table, the store Protocol and the calendar. Free of protobuf and of SQL.

A person enters a cohort with their first matching cohort event (or first event of any kind) in all their
history, when it falls in the time range; the cohort is the period (day, Monday-based week or month in the
query's time zone) holding it. Period n of a cohort is the n-th period after the cohort's own (0). A return
is a matching event at or after the entry, the entry itself included when it matches, at any time after it
(also after the range). BOUNDED: retained in period n when a return falls in period n; UNBOUNDED: in period
n or any later one. store/retention.py counts, per series, cohort and period index, in one ClickHouse
query; this module dates the periods in the time zone (DST included), marks the ones not yet complete and
averages the cohorts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from wayline.common.time_zones import first_showing
from wayline_journeys.analytics import Breakdown, EventMatcher, Population, SeriesKey, TimeRange

__all__ = [
    "CALENDAR_END",
    "CALENDAR_START",
    "CohortCount",
    "RetentionCohort",
    "RetentionPeriod",
    "RetentionQuery",
    "RetentionReadModel",
    "RetentionSeries",
    "RetentionType",
    "RetentionValue",
    "period_start",
    "period_starts",
    "retention_table",
    "within_calendar",
]


class RetentionPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class RetentionType(Enum):
    BOUNDED = "bounded"
    UNBOUNDED = "unbounded"


@dataclass(frozen=True)
class RetentionQuery:
    tenant: str
    cohort_event: EventMatcher | None = None
    return_event: EventMatcher | None = None
    period: RetentionPeriod = RetentionPeriod.WEEK
    period_count: int = 8
    type: RetentionType = RetentionType.BOUNDED
    time_range: TimeRange = field(default_factory=TimeRange)
    time_zone: str = "UTC"
    breakdown: Breakdown = field(default_factory=Breakdown)
    population: Population = field(default_factory=Population)


@dataclass(frozen=True)
class CohortCount:
    """A store row: in `series`, the cohort whose period starts on local date `cohort`, and how many of its
    persons are retained in period `period_index` (-1: how many entered it)."""

    series: SeriesKey
    cohort: date
    period_index: int
    count: int


@dataclass(frozen=True)
class RetentionValue:
    period_index: int
    retained_count: int
    retained_rate: float
    complete: bool


@dataclass(frozen=True)
class RetentionCohort:
    period_start: datetime
    cohort_size: int
    values: tuple[RetentionValue, ...]


@dataclass(frozen=True)
class RetentionSeries:
    key: SeriesKey
    cohorts: tuple[RetentionCohort, ...]
    average: tuple[RetentionValue, ...]


class RetentionReadModel(Protocol):
    def counts(self, query: RetentionQuery) -> list[CohortCount]:
        """Every non-empty cohort's size and retained counts per series (breakdown limit applied)."""
        ...


def _shift(start: date, period: RetentionPeriod, n: int) -> date:
    if period is RetentionPeriod.DAY:
        return start + timedelta(days=n)
    if period is RetentionPeriod.WEEK:
        return start + timedelta(weeks=n)
    months = start.year * 12 + start.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


# The span a range whose periods are listed (trends, change counts) may cover: the years of ClickHouse's
# DateTime64 and Date32, in which the store keeps events and dates periods (store/periods.py), and in which
# Python's calendar can date any period in any zone (it cannot near years 1 and 9999). Ingest takes
# imported history back to 1900.
CALENDAR_START = datetime(1900, 1, 1, tzinfo=UTC)
CALENDAR_END = datetime(2299, 12, 1, tzinfo=UTC)


def within_calendar(start: datetime, end: datetime) -> bool:
    """Whether [start, end) lies in the years periods are dated in (period_starts takes no other)."""
    return start >= CALENDAR_START and end <= CALENDAR_END


def period_start(cohort: date, period: RetentionPeriod, n: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) period n of the cohort starting on local date `cohort` begins: local midnight of its
    first day (where a DST change skips midnight, the first instant of that day)."""
    return first_showing(_shift(cohort, period, n), time(0), zone)


def _floor(local: date, period: RetentionPeriod) -> date:
    if period is RetentionPeriod.WEEK:
        return local - timedelta(days=local.weekday())
    if period is RetentionPeriod.MONTH:
        return local.replace(day=1)
    return local


def period_starts(
    start: datetime, end: datetime, period: RetentionPeriod, zone: ZoneInfo, limit: int
) -> list[date]:
    """The local dates on which the periods overlapping [start, end) begin, oldest first, the first being
    the period holding `start`; at most `limit` + 1 of them (more than `limit` tells the caller the range
    is too long without listing it all). The same calendar as the cohorts (store/periods.py: toDate32,
    toMonday and toStartOfMonth in the zone)."""
    first = _floor(start.astimezone(zone).date(), period)
    found: list[date] = []
    while len(found) <= limit and period_start(first, period, len(found), zone) < end:
        found.append(_shift(first, period, len(found)))
    return found


def _rate(count: int, size: int) -> float:
    return count / size if size else 0.0


def _series(
    key: SeriesKey, rows: list[CohortCount], query: RetentionQuery, now: datetime, zone: ZoneInfo
) -> RetentionSeries:
    sizes: dict[date, int] = {}
    retained: dict[tuple[date, int], int] = {}
    for row in rows:
        if row.period_index < 0:
            sizes[row.cohort] = row.count
        else:
            retained[(row.cohort, row.period_index)] = row.count
    cohorts = []
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # period index → [retained, size]
    complete_periods: dict[int, bool] = defaultdict(lambda: True)
    for cohort in sorted(sizes):
        size, values = sizes[cohort], []
        for n in range(query.period_count + 1):
            if period_start(cohort, query.period, n, zone) > now:
                break
            count = retained.get((cohort, n), 0)
            complete = period_start(cohort, query.period, n + 1, zone) <= now
            values.append(RetentionValue(n, count, _rate(count, size), complete))
            totals[n][0] += count
            totals[n][1] += size
            complete_periods[n] &= complete
        cohorts.append(RetentionCohort(period_start(cohort, query.period, 0, zone), size, tuple(values)))
    average = tuple(
        RetentionValue(n, count, _rate(count, size), complete_periods[n])
        for n, (count, size) in sorted(totals.items())
    )
    return RetentionSeries(key, tuple(cohorts), average)


def retention_table(rows: list[CohortCount], query: RetentionQuery, now: datetime) -> list[RetentionSeries]:
    """The series, the largest (by persons) first and `other` last, each with its cohorts oldest first."""
    zone = ZoneInfo(query.time_zone)
    by_series: dict[SeriesKey, list[CohortCount]] = defaultdict(list)
    for row in rows:
        by_series[row.series].append(row)
    found = [_series(key, series_rows, query, now, zone) for key, series_rows in by_series.items()]
    found.sort(key=lambda s: (s.key.other, -sum(c.cohort_size for c in s.cohorts), s.key))
    return found
