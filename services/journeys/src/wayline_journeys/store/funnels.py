"""FunnelStore on ClickHouse: one statement per QueryFunnel (store/funnel_sql.py), rows turned into stats
here (and one more for a trend); ListFunnelPersons is one statement too, two when it lists the `other`
series (its values come first)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wayline_journeys.analytics import SeriesKey
from wayline_journeys.funnels import FunnelQuery, PersonsPage, StepStats, TimeStats, TrendRow
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.funnel_sql import aggregate_sql, persons_sql, top_values_sql, trend_sql

__all__ = ["ClickHouseFunnels"]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number  # avg and quantile of nothing are NaN


def _stats(row: Sequence[Any], query: FunnelQuery) -> tuple[SeriesKey, int, StepStats]:
    (value, other, missing), step, count, mean, median, histogram, converted, dropped = row
    timed = step > 0 and count > 0
    times = TimeStats(
        mean_us=_number(mean) if timed else None,
        median_us=_number(median) if timed else None,
        histogram=tuple(int(c) for c in histogram) if step > 0 else (),
    )
    size = query.sample_size
    return (
        SeriesKey(str(value), bool(other), bool(missing)),
        int(step),
        StepStats(int(count), times, tuple(converted[:size]), tuple(dropped[:size])),
    )


class ClickHouseFunnels(ReadModel):
    """FunnelStore on the journey store's ClickHouse client."""

    def query(self, query: FunnelQuery) -> list[tuple[SeriesKey, int, StepStats]]:
        params = self._tenant_params(query.tenant)
        rows = self._deep_rows(aggregate_sql(query, params), params, "computing a funnel")
        return [_stats(row, query) for row in rows]

    def persons(self, query: FunnelQuery, page: PersonsPage) -> list[str]:
        top: list[tuple[str, bool]] = []
        if page.series is not None and page.series.other:
            params = self._tenant_params(query.tenant)
            found = self._deep_rows(top_values_sql(query, params), params, "ranking a funnel's breakdown")
            top = [(str(bd[0]), bool(bd[1])) for (bd,) in found]
        params = self._tenant_params(query.tenant)
        rows = self._deep_rows(persons_sql(query, page, top, params), params, "listing a funnel's persons")
        return [str(person) for (person,) in rows]

    def trend(self, query: FunnelQuery) -> list[TrendRow]:
        params = self._tenant_params(query.tenant)
        rows = self._deep_rows(trend_sql(query, params), params, "computing a funnel's trend")
        return [
            TrendRow((str(value), bool(missing)), period, int(level), int(units))
            for (value, missing), period, level, units in rows
        ]
