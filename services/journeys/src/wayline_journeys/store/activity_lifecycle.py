"""ActivityLifecycleReadModel on ClickHouse: one statement per call.

1. The tenant's matching events (read as current persons, once each) before the range's end, all of its
   history: a person's first matching event may be years before the range;
2. per person and series, the time of the first matching event and the set of periods the person was active
   in: the range's periods (the range's part of a period it cuts) and the whole period before them;
3. each active period's position among [the period before, the range's periods] (1 for the period before),
   and per active period of the range its status (new when it holds the first event, returning when the
   period before is active too, resurrecting otherwise), and a dormant mark on the period after each active
   period that is not active itself;
4. persons per (series, period, status).

The statuses are computed per person in arrays (`arrayFilter`/`arrayMap` over a person's few active
periods), so no self-join of periods: one pass over the events and one grouping by person, as the
stickiness statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from wayline.common.timestamps import to_micros
from wayline_journeys.activity_lifecycle import ActivityStatus, LifecycleCell, LifecyclePersonsPage
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.sql import SqlParams
from wayline_journeys.store.trends import period_sql, units_sql
from wayline_journeys.trends import PeriodKey, TrendPeriod, TrendQuery, period_before, trend_periods

__all__ = ["ClickHouseActivityLifecycle", "activity_lifecycle_sql", "lifecycle_persons_sql"]

_DATETIME = "DateTime64(6, 'UTC')"


def _keys(query: TrendQuery, params: SqlParams, before: PeriodKey) -> str:
    """The period `before` the range's first and the range's periods, as `period_sql` keys them, bound."""
    keys = [before, *trend_periods(query)]
    if query.period is TrendPeriod.HOUR:
        micros = [to_micros(k) for k in keys if isinstance(k, datetime)]
        return params.bind(micros, "Array(Int64)")
    return params.bind(keys, "Array(Date32)")


def _statuses(i: int, periods: int) -> str:
    """Series i's (series, range period, status) tuples of one person, from `a{i}` (the positions of their
    active periods, 1 for the period before the range) and `f{i}` (the position of their first event's
    period; 0 when before the period before the range)."""
    active = f"a{i}"
    status = (
        f"multiIf(x = f{i}, {ActivityStatus.NEW.value}, has({active}, x - 1), "
        f"{ActivityStatus.RETURNING.value}, {ActivityStatus.RESURRECTING.value})"
    )
    present = (
        f"arrayMap(x -> tuple(toUInt8({i}), x - 2, toUInt8({status})), arrayFilter(x -> x >= 2, {active}))"
    )
    gone = (
        f"arrayMap(x -> tuple(toUInt8({i}), x - 1, toUInt8({ActivityStatus.DORMANT.value})), "
        f"arrayFilter(x -> x <= {periods} AND NOT has({active}, x + 1), {active}))"
    )
    return f"{present}, {gone}"


def _persons_sql(query: TrendQuery, params: SqlParams, indexes: Sequence[int], after: str = "") -> str:
    """Rows of (person_id, a{i}, f{i} for each series i of `indexes`): the positions of the person's active
    periods and of their first event's period (see `_statuses`); persons after `after` only."""
    zone = params.bind(query.time_zone, "String")
    before, *bounds = period_before(query)
    keys = _keys(query, params, before)
    since, first, start = (params.bind(t, _DATETIME) for t in (*bounds, query.start))
    # Active: in the whole period before, or in the range (not in the part of its first period it cuts).
    active = f"timestamp >= {since} AND (timestamp >= {start} OR timestamp < {first})"
    per_person = ", ".join(
        f"minIf(timestamp, m{i}) AS t{i}, groupUniqArrayIf(period, m{i} AND {active}) AS p{i}"
        for i in indexes
    )
    positions = ", ".join(
        f"arraySort(arrayMap(x -> indexOf({keys}, x), p{i})) AS a{i}, "
        f"indexOf({keys}, {period_sql(query, zone, f't{i}')}) AS f{i}"
        for i in indexes
    )
    later = f" HAVING person_id > {params.bind(after, 'String')}" if after else ""
    return (
        f"SELECT person_id, {positions} FROM (SELECT person_id, {per_person} "
        f"FROM ({units_sql(query, params, zone, None, indexes)}) GROUP BY person_id{later})"
    )


def activity_lifecycle_sql(query: TrendQuery, params: SqlParams) -> str:
    """Rows of (series index, range period index, status value, persons)."""
    indexes = range(len(query.series))
    periods = len(trend_periods(query))
    statuses = ", ".join(_statuses(i, periods) for i in indexes)
    changes = f"SELECT arrayJoin(arrayConcat({statuses})) AS c FROM ({_persons_sql(query, params, indexes)})"
    return f"SELECT c.1, c.2, c.3, count() FROM ({changes}) GROUP BY c.1, c.2, c.3"


def lifecycle_persons_sql(query: TrendQuery, params: SqlParams, page: LifecyclePersonsPage) -> str:
    """The person ids `page` names, ascending (a person has one status at most per series and period)."""
    i = page.series_index
    statuses = _statuses(i, len(trend_periods(query)))
    changes = (
        f"SELECT person_id, arrayJoin(arrayConcat({statuses})) AS c "
        f"FROM ({_persons_sql(query, params, [i], page.after)})"
    )
    period, status = params.bind(page.period, "Int64"), params.bind(page.status.value, "UInt8")
    return (
        f"SELECT person_id FROM ({changes}) WHERE c.2 = {period} AND c.3 = {status} "
        f"ORDER BY person_id LIMIT {params.bind(page.limit, 'UInt32')}"
    )


class ClickHouseActivityLifecycle(ReadModel):
    """ActivityLifecycleReadModel on the journey store's ClickHouse client."""

    def activity_lifecycle(self, query: TrendQuery) -> list[LifecycleCell]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(activity_lifecycle_sql(query, params), params, "computing the activity lifecycle")
        return [LifecycleCell(int(i), int(n), ActivityStatus(int(s)), int(c)) for i, n, s, c in rows]

    def persons(self, query: TrendQuery, page: LifecyclePersonsPage) -> list[str]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(lifecycle_persons_sql(query, params, page), params, "listing a lifecycle's persons")
        return [str(person) for (person,) in rows]
