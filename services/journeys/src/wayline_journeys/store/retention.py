"""RetentionReadModel on ClickHouse: one statement per call.

1. per person, over all their events (read as current persons): the entry (the earliest cohort-matching
   event's time), the breakdown's raw value on that event (argMin by time then event id), and maxMap of the
   return-matching events' times keyed by their period number in the time zone (days, weeks from Monday or
   months: periods.py): the latest return in each period, so a return earlier than the entry in its own
   period is told apart;
2. persons whose entry falls in the range: the cohort (the local date its period starts), the period
   indexes retained (BOUNDED: those holding a return at or after the entry, up to period_count;
   UNBOUNDED: 0 up to the last such index), fanned out by arrayJoin with -1 for "entered";
3. counted per breakdown value, cohort and index; with a breakdown, values beyond the limit (by persons)
   become `other` and are summed (a person has one value, so sums are exact).
"""

from __future__ import annotations

from wayline_journeys.analytics import BreakdownDimension, SeriesKey
from wayline_journeys.retention import CohortCount, RetentionQuery, RetentionType
from wayline_journeys.store.breakdown import (
    NO_EVENT_BREAKDOWN,
    event_breakdown_raw,
    person_breakdown,
    ranked_series,
    series_of_raw,
)
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.matching import matcher_kinds_sql, matcher_sql, population_sql
from wayline_journeys.store.periods import period_number, period_start
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import EVENT_ID_ORDER, SqlParams

__all__ = ["ClickHouseRetention", "retention_sql"]

_DATETIME = "DateTime64(6, 'UTC')"


def _persons(query: RetentionQuery, params: SqlParams, zone: str) -> str:
    cohort = matcher_sql(query.cohort_event, params) if query.cohort_event else "true"
    returns = matcher_sql(query.return_event, params) if query.return_event else "true"
    number = period_number(query.period, "timestamp", zone)
    bd = event_breakdown_raw(query.breakdown, params)
    # The entry event's value breaks ties on time by event id, as everywhere; the entry time itself needs no
    # tie-break, and a tie-break per event was most of this statement's cost (measured at 1M events with the
    # id formatted as text: 959 ms with it, 226 ms without, the raw query 70-224 ms), so only a breakdown
    # pays for it.
    if bd != NO_EVENT_BREAKDOWN:
        bd = f"argMinIf({bd}, tuple(timestamp, {EVENT_ID_ORDER}), {cohort})"
    return (
        f"SELECT person_id, minIf(timestamp, {cohort}) AS entry, "
        f"{bd} AS bd_raw, countIf({cohort}) > 0 AS entered, "
        f"maxMapIf([{number}], [toUnixTimestamp64Micro(timestamp)], {returns}) "
        f"AS returns FROM {current_events(params, kinds=_kinds(query, params))} "
        f"WHERE {population_sql(query.population, params)} GROUP BY person_id"
    )


def _kinds(query: RetentionQuery, params: SqlParams) -> str:
    """The names, types and channels of the cohort and return events, read before FINAL (relation.py); 'true'
    when either is any event."""
    if query.cohort_event is None or query.return_event is None:
        return "true"
    kinds = [matcher_kinds_sql(m, params) for m in (query.cohort_event, query.return_event)]
    return "true" if "true" in kinds else f"({kinds[0]}) OR ({kinds[1]})"


def _retained(query: RetentionQuery, params: SqlParams, zone: str) -> str:
    last = params.bind(query.period_count, "Int64")
    indexes = (
        f"arrayMap(k -> k - {period_number(query.period, 'entry', zone)}, "
        "arrayFilter((k, t) -> t >= toUnixTimestamp64Micro(entry), returns.1, returns.2))"
    )
    if query.type is RetentionType.BOUNDED:
        return f"arrayFilter(i -> i <= {last}, {indexes})"
    return (
        f"if(empty({indexes}), CAST([], 'Array(Int64)'), "
        f"arrayMap(i -> toInt64(i), range(toUInt64(least(arrayMax({indexes}), {last}) + 1))))"
    )


def retention_sql(query: RetentionQuery, params: SqlParams) -> str:
    """Rows of (series (value, other, missing), cohort start date, period index (-1: entered), persons)."""
    zone = params.bind(query.time_zone, "String")
    in_range = ["entered"]
    if query.time_range.start is not None:
        in_range.append(f"entry >= {params.bind(query.time_range.start, _DATETIME)}")
    if query.time_range.end is not None:
        in_range.append(f"entry < {params.bind(query.time_range.end, _DATETIME)}")
    persons = f"SELECT * FROM ({_persons(query, params, zone)}) WHERE {' AND '.join(in_range)}"
    joined = person_breakdown(query.breakdown, params, current_events(params))
    if joined is not None:
        persons = (
            f"SELECT p.*, t.raw AS trait FROM ({persons}) AS p "
            f"LEFT JOIN {joined} AS t ON t.person_id = p.person_id"
        )
    raw = "trait" if joined is not None else "bd_raw"
    entries = (
        f"SELECT {series_of_raw(raw)} AS bd, {period_start(query.period, 'entry', zone)} AS cohort, "
        f"arrayJoin(arrayConcat([toInt64(-1)], {_retained(query, params, zone)})) AS idx FROM ({persons})"
    )
    counted = f"SELECT bd, cohort, idx, count() AS cnt FROM ({entries}) GROUP BY bd, cohort, idx"
    if query.breakdown.dimension is BreakdownDimension.NONE:
        return f"SELECT tuple('', false, false) AS series, cohort, idx, cnt FROM ({counted})"
    ranked = ranked_series(f"({counted})", "if(idx = -1, cnt, 0)", query.breakdown.kept_series(), params)
    return f"SELECT series, cohort, idx, sum(cnt) FROM {ranked} GROUP BY series, cohort, idx"


class ClickHouseRetention(ReadModel):
    """RetentionReadModel on the journey store's ClickHouse client."""

    def counts(self, query: RetentionQuery) -> list[CohortCount]:
        params = self._tenant_params(query.tenant)
        sql = retention_sql(query, params)
        rows = self._rows(sql, params, "computing retention")
        return [
            CohortCount(SeriesKey(value, bool(other), bool(missing)), cohort, int(idx), int(count))
            for (value, other, missing), cohort, idx, count in rows
        ]
