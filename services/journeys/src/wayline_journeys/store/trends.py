"""TrendsReadModel on ClickHouse: one statement per call.

1. The events of the range (read as current persons, once each) of the persons of the population, each
   fanned out by arrayJoin to the series it matches, with its series' number (Nullable: NULL where the
   property is not a JSON number, or for the counting maths), its breakdown value and the local date its
   period starts on;
2. aggregated per (series, value, period) and, in the same pass, per (series, value) over the whole range
   (GROUPING SETS): events, values, sum, least and greatest as plain numbers, which add up; persons and
   percentiles as aggregate states, only when a series asks for them, since they must be merged, not added;
3. with a breakdown, values beyond the limit (by events over every series) become `other` and their cells
   are merged (ranked_series): its persons counted once, its percentiles of all its values.
"""

from __future__ import annotations

import math

from wayline_journeys.analytics import BreakdownDimension, SeriesKey
from wayline_journeys.store.breakdown import (
    event_breakdown_raw,
    person_breakdown,
    ranked_series,
    series_of_raw,
)
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.matching import (
    EVENT_FIELDS,
    event_property_raw,
    json_is_number,
    matcher_kinds_sql,
    matcher_sql,
    population_sql,
)
from wayline_journeys.store.periods import period_start
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams
from wayline_journeys.trends import QUANTILES, TrendCell, TrendQuery, TrendSeries

__all__ = ["ClickHouseTrends", "trends_sql"]

_DATETIME = "DateTime64(6, 'UTC')"
_NUMBER = "Nullable(Float64)"


def _matches(series: TrendSeries, params: SqlParams) -> str:
    found = " OR ".join(f"({matcher_sql(m, params)})" for m in series.matchers)
    if series.currency:
        currency = params.bind(series.currency, "String")
        found = f"({found}) AND revenue IS NOT NULL AND revenue_currency = {currency}"
    return found


def _kinds(query: TrendQuery, params: SqlParams) -> str:
    """The names, types and channels any series reads, before FINAL (relation.py); 'true' for any event."""
    kinds = [matcher_kinds_sql(m, params) for s in query.series for m in s.matchers]
    return "true" if "true" in kinds else " OR ".join(f"({k})" for k in kinds)


def _number(series: TrendSeries, params: SqlParams) -> str:
    """The series' number on an event row: the property as a Float64 where it is a JSON number, else NULL."""
    if not series.math.of_property:
        return f"CAST(NULL, '{_NUMBER}')"
    if EVENT_FIELDS.get(series.property, False):
        return (
            f"CAST(toFloat64({series.property}), '{_NUMBER}')"  # revenue, sentiment_score: Nullable columns
        )
    raw = event_property_raw(series.property, params)
    return f"if({json_is_number(raw)}, toFloat64OrNull({raw}), CAST(NULL, '{_NUMBER}'))"


def _units(query: TrendQuery, params: SqlParams, zone: str) -> str:
    """One row per (event, series it matches): s, person_id, bd (value, missing), period, v."""
    matched = ", ".join(f"if({_matches(s, params)}, {i}, -1)" for i, s in enumerate(query.series))
    numbers = ", ".join(f"s = {i}, {_number(s, params)}" for i, s in enumerate(query.series))
    start, end = params.bind(query.start, _DATETIME), params.bind(query.end, _DATETIME)
    span = f"timestamp >= {start} AND timestamp < {end}"
    events = (
        f"SELECT *, arrayJoin(arrayFilter(i -> i >= 0, [{matched}])) AS s "
        f"FROM {current_events(params, where=span, kinds=_kinds(query, params))} "
        f"WHERE {population_sql(query.population, params)}"
    )
    joined = person_breakdown(query.breakdown, params, current_events(params))
    raw = "bd_raw" if joined is not None else event_breakdown_raw(query.breakdown, params)
    if joined is not None:
        events = (
            f"SELECT e.*, t.raw AS bd_raw FROM ({events}) AS e "
            f"LEFT JOIN {joined} AS t ON t.person_id = e.person_id"
        )
    return (
        f"SELECT s, person_id, {series_of_raw(raw)} AS bd, {period_start(query.period, 'timestamp', zone)} "
        f"AS period, multiIf({numbers}, CAST(NULL, '{_NUMBER}')) AS v FROM ({events})"
    )


def _levels() -> str:
    return ", ".join(str(q) for q in QUANTILES.values())


def trends_sql(query: TrendQuery, params: SqlParams) -> str:
    """Rows of (series index, series (value, other, missing), period start or any date, whole range, events,
    persons, values, sum, least, greatest, percentiles)."""
    zone = params.bind(query.time_zone, "String")
    persons = "uniqExactState(person_id)" if query.counts_persons else "uniqExactState(0)"
    levels = _levels()
    quantiles = f"quantilesExactInclusiveState({levels})(v)" if query.has_quantiles else "0"
    cells = (
        f"SELECT s, bd, period, grouping(period) = 1 AS whole, count() AS n, {persons} AS p, count(v) AS nv, "
        f"sum(v) AS sv, min(v) AS lo, max(v) AS hi, {quantiles} AS q FROM ({_units(query, params, zone)}) "
        "GROUP BY GROUPING SETS ((s, bd, period), (s, bd))"
    )
    if query.breakdown.dimension is BreakdownDimension.NONE:
        keyed = f"(SELECT *, tuple('', false, false) AS series FROM ({cells}))"
    else:
        keyed = ranked_series(f"({cells})", "if(whole, n, 0)", query.breakdown.kept_series(), params)
    merged_q = f"quantilesExactInclusiveMerge({levels})(q)" if query.has_quantiles else "[]"
    return (
        f"SELECT s, series, period, whole, sum(n), uniqExactMerge(p), sum(nv), sum(sv), min(lo), max(hi), "
        f"{merged_q} FROM {keyed} GROUP BY s, series, period, whole"
    )


def _float(found: float | None) -> float | None:
    return None if found is None or math.isnan(found) else float(found)


class ClickHouseTrends(ReadModel):
    """TrendsReadModel on the journey store's ClickHouse client."""

    def cells(self, query: TrendQuery) -> list[TrendCell]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(trends_sql(query, params), params, "computing a trend")
        return [
            TrendCell(
                series_index=int(s),
                key=SeriesKey(value, bool(other), bool(missing)),
                period=None if whole else period,
                events=int(events),
                persons=int(persons) if query.counts_persons else 0,
                values=int(values),
                total=float(total or 0.0),
                minimum=_float(lo),
                maximum=_float(hi),
                quantiles=tuple(float(q) for q in quantiles),
            )
            for s, (
                value,
                other,
                missing,
            ), period, whole, events, persons, values, total, lo, hi, quantiles in rows
        ]
