"""TrendsReadModel and StickinessReadModel on ClickHouse: one statement per call (two for rolling maths).

1. The events of the range (read as current persons, once each) of the persons of the population that
   match any series, each with one flag per series (does it match?), one number per property series (NULL
   where the property is not a JSON number), its breakdown value and the local date its period starts on;
2. aggregated per (value, period) and, in the same pass, per value over the whole range (GROUPING SETS),
   with each series' aggregates under its flag (`-If`): events always; persons, values, sum, least,
   greatest or the percentile only for the series whose math needs them. Counts, sums and extremes add up;
   persons and percentiles are aggregate states, since they must be merged, not added. One pass over the
   events, as a hand-written query would make: fanning each event out to the series it matches (arrayJoin)
   and grouping by series too measured 2.4-2.6 times slower on the bench's trend at 1M events;
3. with a breakdown, values beyond the limit (by events over every series) become `other` and their cells
   are merged (ranked_series): its persons counted once, its percentiles of all its values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from wayline.common.timestamps import from_micros
from wayline_journeys.analytics import BreakdownDimension, SeriesKey
from wayline_journeys.stickiness import StickinessCell
from wayline_journeys.store.breakdown import (
    event_breakdown_raw,
    person_breakdown,
    ranked_series,
    series_of_raw,
)
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.matching import (
    event_number_sql,
    matcher_kinds_sql,
    matcher_sql,
    population_sql,
    revenue_in_sql,
)
from wayline_journeys.store.periods import period_start
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams
from wayline_journeys.trends import (
    QUANTILES,
    PeriodKey,
    TrendCell,
    TrendMath,
    TrendPeriod,
    TrendQuery,
    TrendSeries,
    trend_periods,
)

__all__ = ["ClickHouseTrends", "period_sql", "rolling_sql", "stickiness_sql", "trends_sql", "units_sql"]

_DATETIME = "DateTime64(6, 'UTC')"


def _matches(series: TrendSeries, params: SqlParams) -> str:
    found = " OR ".join(f"({matcher_sql(m, params)})" for m in series.matchers)
    if series.currency:
        found = f"({found}) AND {revenue_in_sql(series.currency, params)}"
    return found


def _kinds(query: TrendQuery, params: SqlParams) -> str:
    """The names, types and channels any series reads, before FINAL (relation.py); 'true' for any event."""
    kinds = [matcher_kinds_sql(m, params) for s in query.series for m in s.matchers]
    return "true" if "true" in kinds else " OR ".join(f"({k})" for k in kinds)


def _breakdown_value(query: TrendQuery, params: SqlParams, joined: bool) -> str:
    """(value, missing) of an event row. The channel is read from its column: the JSON text other values
    go through would be written and parsed back for every event."""
    if query.breakdown.dimension is BreakdownDimension.CHANNEL:
        return "tuple(channel, false)"
    return series_of_raw("bd_raw" if joined else event_breakdown_raw(query.breakdown, params))


def period_sql(query: TrendQuery, zone: str, time: str = "timestamp") -> str:
    """The period key of the instant `time` (a DateTime64 expression): the local date a calendar period
    starts on (Date32), or for hours the instant (Unix microseconds, Int64) the local clock last showed a
    whole hour, counted back from the local minute and second twice as trends.hour_start does (ClickHouse's
    toStartOfHour stops at 1970)."""
    calendar = query.period.calendar
    if calendar is not None:
        return period_start(calendar, time, zone)
    micros = f"toUnixTimestamp64Micro({time})"
    back = f"(toInt64(toMinute({time}, {zone})) * 60 + toSecond({time}, {zone})) * 1000000"
    once = f"({micros} - ({back} + positiveModulo({micros}, 1000000)))"
    # Counted back once more from there: where the offset changed by a fraction of an hour since the whole
    # hour, the first count lands on an instant the clock showed no whole hour (trends.hour_start).
    landed = f"fromUnixTimestamp64Micro({once}, 'UTC')"
    return f"{once} - (toInt64(toMinute({landed}, {zone})) * 60 + toSecond({landed}, {zone})) * 1000000"


def units_sql(
    query: TrendQuery, params: SqlParams, zone: str, since: datetime | None, indexes: Sequence[int]
) -> str:
    """One row per event since `since` (all of them when None; before the range's end) matching any of the
    series `indexes`: person_id, timestamp, bd (value, missing), period, m{i} (matches series i), v{i} (series
    i's number, for property maths)."""
    flags = [f"({_matches(query.series[i], params)}) AS m{i}" for i in indexes]
    numbers = [
        f"{event_number_sql(query.series[i].property, params)} AS v{i}"
        for i in indexes
        if query.series[i].math.of_property
    ]
    span = f"timestamp < {params.bind(query.end, _DATETIME)}"
    if since is not None:
        span = f"timestamp >= {params.bind(since, _DATETIME)} AND {span}"
    any_series = " OR ".join(f"m{i}" for i in indexes)
    events = (
        f"SELECT *, {', '.join([*flags, *numbers])} "
        f"FROM {current_events(params, where=span, kinds=_kinds(query, params))} "
        f"WHERE ({any_series}) AND {population_sql(query.population, params)}"
    )
    joined = person_breakdown(query.breakdown, params, current_events(params))
    if joined is not None:
        events = (
            f"SELECT e.*, t.raw AS bd_raw FROM ({events}) AS e "
            f"LEFT JOIN {joined} AS t ON t.person_id = e.person_id"
        )
    columns = [f"m{i}" for i in indexes]
    columns += [f"v{i}" for i in indexes if query.series[i].math.of_property]
    return (
        f"SELECT person_id, timestamp, {_breakdown_value(query, params, joined is not None)} AS bd, "
        f"{period_sql(query, zone)} AS period, {', '.join(columns)} FROM ({events})"
    )


def _aggregates(i: int, series: TrendSeries) -> list[tuple[str, str, str]]:
    """Series i's aggregates: (the TrendCell field, the aggregate over its events, its merge), only those its
    math needs besides the events."""
    found = [("events", f"countIf(m{i})", "sum")]
    if series.math.counts_persons:
        found.append(("persons", f"uniqExactIfState(person_id, m{i})", "uniqExactIfMerge"))
    if series.math.of_property:
        found.append(("values", f"countIf(m{i} AND v{i} IS NOT NULL)", "sum"))
    if series.math in (TrendMath.SUM, TrendMath.AVERAGE):
        found.append(("total", f"sumIf(v{i}, m{i})", "sum"))
    if series.math is TrendMath.MINIMUM:
        found.append(("minimum", f"minIf(v{i}, m{i})", "min"))
    if series.math is TrendMath.MAXIMUM:
        found.append(("maximum", f"maxIf(v{i}, m{i})", "max"))
    if series.math in QUANTILES:
        level = QUANTILES[series.math]
        merge = f"quantileExactInclusiveIfMerge({level})"
        found.append(("quantile", f"quantileExactInclusiveIfState({level})(v{i}, m{i})", merge))
    return found


def trends_sql(query: TrendQuery, params: SqlParams) -> str:
    """Rows of (series (value, other, missing), period start or any date, whole range, then each series'
    aggregates in the order of `_aggregates`)."""
    zone = params.bind(query.time_zone, "String")
    found = [one for i, s in enumerate(query.series) for one in _aggregates(i, s)]
    named = [f"{aggregate} AS a{k}" for k, (_, aggregate, _) in enumerate(found)]
    cells = (
        f"SELECT bd, period, grouping(period) = 1 AS whole, {', '.join(named)} "
        f"FROM ({units_sql(query, params, zone, query.start, range(len(query.series)))}) "
        "GROUP BY GROUPING SETS ((bd, period), (bd))"
    )
    if query.breakdown.dimension is BreakdownDimension.NONE:
        keyed = f"(SELECT *, tuple('', false, false) AS series FROM ({cells}))"
    else:
        events = " + ".join(f"a{k}" for k, (field, _, _) in enumerate(found) if field == "events")
        weight = f"if(whole, {events}, 0)"
        keyed = ranked_series(f"({cells})", weight, query.breakdown.kept_series(), params)
    merged = [f"{merge}(a{k})" for k, (_, _, merge) in enumerate(found)]
    return f"SELECT series, period, whole, {', '.join(merged)} FROM {keyed} GROUP BY series, period, whole"


def _float(found: Any) -> float | None:
    return None if found is None or math.isnan(found) else float(found)


def _key(query: TrendQuery, period: Any) -> PeriodKey:
    """A row's period key as trends.trend_periods lists it."""
    if query.period is TrendPeriod.HOUR:
        return from_micros(int(period))
    return period  # type: ignore[no-any-return]


def _cells(query: TrendQuery, row: Sequence[Any]) -> list[TrendCell]:
    """The cells of one statement row: one per series with events in it."""
    (value, other, missing), period, whole, *aggregates = row
    column = iter(aggregates)
    found = []
    for i, series in enumerate(query.series):
        named = {field: next(column) for field, _, _ in _aggregates(i, series)}
        if not named["events"]:
            continue
        found.append(
            TrendCell(
                series_index=i,
                key=SeriesKey(value, bool(other), bool(missing)),
                period=None if whole else _key(query, period),
                events=int(named["events"]),
                persons=int(named.get("persons", 0)),
                values=int(named.get("values", 0)),
                total=float(named.get("total") or 0.0),
                minimum=_float(named.get("minimum")),
                maximum=_float(named.get("maximum")),
                quantile=_float(named.get("quantile")),
            )
        )
    return found


def _key_text(value: str, missing: bool) -> str:
    """A breakdown value as one string, as `rolling_sql` compares it with the kept ones."""
    return f"{value}\x00{int(missing)}"


def _window_changes(j: int, window: int, days: str) -> str:
    """Where a person's `window`-day activity starts and stops, as (rolling series j, day, +1 or -1): each
    active day d counts for d and the window's days after it, so sorted days closer than the window merge
    into one interval, which starts at its first day and stops the day after its last day's window."""
    starts = (
        f"arrayFilter((x, n) -> n = 1 OR x > addDays({days}[n - 1], {window}), "
        f"{days}, arrayEnumerate({days}))"
    )
    ends = (
        f"arrayFilter((x, n) -> n = length({days}) OR {days}[n + 1] > addDays(x, {window}), "
        f"{days}, arrayEnumerate({days}))"
    )
    return (
        f"arrayConcat(arrayMap(x -> tuple(toUInt8({j}), x, toInt8(1)), {starts}), "
        f"arrayMap(x -> tuple(toUInt8({j}), addDays(x, {window}), toInt8(-1)), {ends}))"
    )


def rolling_sql(query: TrendQuery, params: SqlParams, kept: Sequence[SeriesKey]) -> str:
    """Rows of (series (value, other, missing), j, day, change): how many more (or fewer) persons rolling
    series `query.rolling[j]` counts active from `day` on than the day before, the days before the first day
    summed into it. Each person's matching days (local, in the zone) since the longest window before the
    first day become intervals (`_window_changes`); a person's intervals never overlap, so the running sum of
    the changes is the number of distinct active persons each day. Counting each person-day forward into
    every day of its window and then distinct persons per day, as a hand-written query would, measured 4-12
    times slower (ADR 88). With a breakdown, values not `kept` (ranked out by trends_sql) are measured
    together as `other`, each person's days of all of them merged."""
    zone = params.bind(query.time_zone, "String")
    rolling = query.rolling
    widest = max(query.series[i].math.window_days or 1 for i in rolling)
    days = [d for d in trend_periods(query) if not isinstance(d, datetime)]
    since = query.start - timedelta(days=widest + 1)  # every zone's day that can count, and some more
    if query.breakdown.dimension is BreakdownDimension.NONE:
        series = "tuple('', false, false)"
    else:
        texts = params.bind([_key_text(k.value, k.missing) for k in kept], "Array(String)")
        key = "concat(bd.1, '\\0', toString(toUInt8(bd.2)))"
        series = f"if(has({texts}, {key}), tuple(bd.1, false, toBool(bd.2)), tuple('', true, false))"
    active = ", ".join(f"arraySort(groupUniqArrayIf(period, m{i})) AS s{j}" for j, i in enumerate(rolling))
    persons = (
        f"SELECT series, {active} FROM (SELECT *, {series} AS series "
        f"FROM ({units_sql(query, params, zone, since, rolling)})) GROUP BY series, person_id"
    )
    changes = ", ".join(
        _window_changes(j, query.series[i].math.window_days or 1, f"s{j}") for j, i in enumerate(rolling)
    )
    first, last = params.bind(days[0], "Date32"), params.bind(days[-1], "Date32")
    return (
        f"SELECT series, c.1 AS j, greatest(c.2, {first}) AS day, sum(c.3) "
        f"FROM (SELECT series, arrayJoin(arrayConcat({changes})) AS c FROM ({persons})) "
        f"WHERE c.2 <= {last} GROUP BY series, j, day"
    )


def _with_rolling(
    query: TrendQuery, cells: list[TrendCell], rows: Sequence[Sequence[Any]]
) -> list[TrendCell]:
    """`cells` with each rolling series' day cells counting its active persons (days without events too):
    the running sum of `rolling_sql`'s changes over the days of the range."""
    changes: dict[tuple[int, SeriesKey], dict[Any, int]] = {}
    for (value, other, missing), j, day, change in rows:
        at = (query.rolling[j], SeriesKey(value, bool(other), bool(missing)))
        by_day = changes.setdefault(at, {})
        by_day[day] = by_day.get(day, 0) + int(change)
    found = {(c.series_index, c.key, c.period): c for c in cells}
    days = [d for d in trend_periods(query) if not isinstance(d, datetime)]
    for (i, key), by_day in changes.items():
        active = 0
        for day in days:
            active += by_day.get(day, 0)
            if not active:
                continue
            cell = found.get((i, key, day))
            found[i, key, day] = (
                replace(cell, persons=active) if cell is not None else TrendCell(i, key, day, 0, active)
            )
    return list(found.values())


def stickiness_sql(query: TrendQuery, params: SqlParams) -> str:
    """Rows of (series (value, other, missing), series index, active periods, persons): each person's
    distinct periods with a matching event per series and breakdown value (a person's row per value), the
    values ranked by how many persons they hold over every series (ranked_series; the others as `other`,
    where a person's periods of all of them merge), then persons per number of periods."""
    zone = params.bind(query.time_zone, "String")
    indexes = range(len(query.series))
    units = units_sql(query, params, zone, query.start, indexes)
    if query.breakdown.dimension is BreakdownDimension.NONE:
        # One value: each person's periods are counted where they are grouped, without keeping them.
        counted = ", ".join(f"uniqExactIf(period, m{i}) AS n{i}" for i in indexes)
        per_person = f"SELECT tuple('', false, false) AS series, {counted} FROM ({units}) GROUP BY person_id"
    else:
        active = ", ".join(f"groupUniqArrayIf(period, m{i}) AS p{i}" for i in indexes)
        weight = " + ".join(f"notEmpty(p{i})" for i in indexes)
        per_value = f"SELECT bd, person_id, {active} FROM ({units}) GROUP BY bd, person_id"
        keyed = ranked_series(f"({per_value})", weight, query.breakdown.kept_series(), params)
        merged = ", ".join(f"length(arrayDistinct(arrayFlatten(groupArray(p{i})))) AS n{i}" for i in indexes)
        per_person = f"SELECT series, {merged} FROM {keyed} GROUP BY series, person_id"
    numbers = ", ".join(f"n{i}" for i in indexes)
    series = params.bind(list(indexes), "Array(UInt8)")
    return (
        f"SELECT series, i, n, count() FROM ({per_person}) ARRAY JOIN [{numbers}] AS n, {series} AS i "
        "WHERE n > 0 GROUP BY series, i, n"
    )


class ClickHouseTrends(ReadModel):
    """TrendsReadModel and StickinessReadModel on the journey store's ClickHouse client."""

    def stickiness(self, query: TrendQuery) -> list[StickinessCell]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(stickiness_sql(query, params), params, "computing stickiness")
        return [
            StickinessCell(int(i), SeriesKey(value, bool(other), bool(missing)), int(n), int(persons))
            for (value, other, missing), i, n, persons in rows
        ]

    def cells(self, query: TrendQuery) -> list[TrendCell]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(trends_sql(query, params), params, "computing a trend")
        cells = [cell for row in rows for cell in _cells(query, row)]
        if not query.rolling:
            return cells
        kept = sorted({c.key for c in cells if not c.key.other})
        params = self._tenant_params(query.tenant)
        rolling = self._rows(rolling_sql(query, params, kept), params, "computing active persons")
        return _with_rolling(query, cells, rolling)
