"""Customer value in ClickHouse: one row per person, from which GetCustomerValue (and later segments' value
and RFM conditions) select.

`person_value_rows` is the reusable part: a subquery over the tenant's counted events (see customer_value.py)
read as current persons, with one row per person who has at least one, in three steps that ClickHouse runs
as one statement:
1. per person and UTC day: the day's net value, its purchases (positive revenue) and their first and last
   times;
2. per person: historic value, purchase count and times, and the purchase periods (days whose net value is
   positive) with the first and last of them and the summed value of the periods after the first;
3. the RFM scores by window functions over the purchasers, so every person is ranked among all the tenant's
   purchasers whatever a caller filters afterwards.

Its columns (`VALUE_COLUMNS`): person_id String; historic_value Decimal(38, 9); purchase_count UInt64;
first_purchase_time and last_purchase_time Nullable(DateTime64(6, 'UTC')); recency_days Nullable(Int64);
recency_score, frequency_score, monetary_score and fm_score (0 for a person without purchase); rfm_segment
String (`RfmSegment`'s values); purchase_periods UInt64; frequency, recency and t Nullable(Int64) (NULL
without purchase period); repeat_value Decimal(38, 9), so that monetary_value = repeat_value / frequency
(the RPC rounds it half to even; a condition can compare `repeat_value` with `frequency` times a bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from wayline.common.timestamps import from_micros, to_micros
from wayline_journeys.analytics import Population
from wayline_journeys.customer_value import (
    RFM_GRID,
    VALUE_QUANTILES,
    CellSummary,
    LifetimeSummary,
    PageCursor,
    PersonValue,
    RfmSegment,
    ValuePage,
    ValueSpec,
    ValueSummary,
)
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.matching import population_sql, revenue_in_sql
from wayline_journeys.store.person_refs import current_persons
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

__all__ = ["VALUE_COLUMNS", "ClickHouseCustomerValues", "counted_sql", "person_value_rows"]

VALUE_COLUMNS = (
    "person_id",
    "historic_value",
    "purchase_count",
    "first_purchase_time",
    "last_purchase_time",
    "recency_days",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "fm_score",
    "rfm_segment",
    "purchase_periods",
    "frequency",
    "recency",
    "t",
    "repeat_value",
)

_DAY_US = 86_400_000_000


def _quintile(rank: str, count: str) -> str:
    """SQL's ntile(5) bucket of position `rank` among `count` rows: the first count % 5 buckets hold one row
    more. (Both branches of `if` are evaluated, hence greatest(..., 1) against a division by zero.)"""
    size, extra = f"intDiv({count}, 5)", f"({count} % 5)"
    large = f"{extra} * ({size} + 1)"
    return (
        f"if({rank} <= {large}, intDiv({rank} - 1, {size} + 1) + 1, "
        f"{extra} + intDiv({rank} - 1 - {large}, greatest({size}, 1)) + 1)"
    )


def _segment(recency: str, fm: str) -> str:
    """RFM_GRID as one multiIf: the first row holding (R, FM) names the segment. Only constants of the grid
    are written into the text."""
    arms = [
        f"{recency} IN {rs!r} AND {fm} IN {fms!r}, '{segment.value}'".replace(",)", ")")
        for segment, rs, fms in RFM_GRID
    ]
    return f"multiIf({', '.join(arms)}, '{RfmSegment.NO_PURCHASE.value}')"


def counted_sql(spec: ValueSpec, params: SqlParams) -> tuple[str, str]:
    """A predicate on the events relation's columns for the events `spec` counts, and the bound end of its
    window."""
    end = f"fromUnixTimestamp64Micro({params.bind(to_micros(spec.end), 'Int64')}, 'UTC')"
    counted = [revenue_in_sql(spec.currency, params), f"timestamp < {end}"]
    if spec.start is not None:
        counted.append(
            f"timestamp >= fromUnixTimestamp64Micro({params.bind(to_micros(spec.start), 'Int64')}, 'UTC')"
        )
    if spec.event_names:
        counted.append(f"name IN {params.bind(list(spec.event_names), 'Array(String)')}")
    return " AND ".join(counted), end


def _counted_kinds(spec: ValueSpec, params: SqlParams) -> str:
    """The part of `counted_sql` on what every copy of an event shares, for the read before FINAL."""
    kinds = [revenue_in_sql(spec.currency, params)]
    if spec.event_names:
        kinds.append(f"name IN {params.bind(list(spec.event_names), 'Array(String)')}")
    return " AND ".join(kinds)


def person_value_rows(spec: ValueSpec, params: SqlParams, tenant: str = "{tenant:String}") -> str:
    """A parenthesised subquery with one row per person who has a counted event under `spec`, with
    `VALUE_COLUMNS`. `tenant` is the placeholder of the bound tenant (the caller binds it once)."""
    counted, end = counted_sql(spec, params)
    relation = current_events(params, tenant, counted, kinds=_counted_kinds(spec, params))
    days = (
        "SELECT person_id, toDate32(timestamp, 'UTC') AS day, sum(assumeNotNull(revenue)) AS day_value, "
        "countIf(revenue > 0) AS day_purchases, minIf(timestamp, revenue > 0) AS day_first, "
        f"maxIf(timestamp, revenue > 0) AS day_last FROM {relation} GROUP BY person_id, day"
    )
    persons = (
        "SELECT person_id, sum(day_value) AS historic_value, sum(day_purchases) AS purchase_count, "
        "minIf(day_first, day_purchases > 0) AS first_purchase, "
        "maxIf(day_last, day_purchases > 0) AS last_purchase, "
        "countIf(day_value > 0) AS purchase_periods, minIf(day, day_value > 0) AS first_period, "
        "maxIf(day, day_value > 0) AS last_period, "
        "sumIf(day_value, day_value > 0) - argMinIf(day_value, day, day_value > 0) AS repeat_value "
        f"FROM ({days}) GROUP BY person_id"
    )
    ranked = (
        "SELECT *, "
        f"intDiv(toUnixTimestamp64Micro({end}) - toUnixTimestamp64Micro(last_purchase), {_DAY_US}) "
        "AS days_since, "
        "count() OVER (PARTITION BY purchaser) AS purchasers, "
        "rank() OVER (PARTITION BY purchaser ORDER BY days_since DESC) AS recency_rank, "
        "rank() OVER (PARTITION BY purchaser ORDER BY purchase_count ASC) AS frequency_rank, "
        "rank() OVER (PARTITION BY purchaser ORDER BY historic_value ASC) AS monetary_rank "
        f"FROM (SELECT *, purchase_count > 0 AS purchaser FROM ({persons}))"
    )
    return (
        "(SELECT person_id, historic_value, purchase_count, "
        "if(purchaser, first_purchase, NULL) AS first_purchase_time, "
        "if(purchaser, last_purchase, NULL) AS last_purchase_time, "
        "if(purchaser, days_since, NULL) AS recency_days, "
        f"if(purchaser, {_quintile('recency_rank', 'purchasers')}, 0) AS recency_score, "
        f"if(purchaser, {_quintile('frequency_rank', 'purchasers')}, 0) AS frequency_score, "
        f"if(purchaser, {_quintile('monetary_rank', 'purchasers')}, 0) AS monetary_score, "
        "intDiv(frequency_score + monetary_score + 1, 2) AS fm_score, "
        f"{_segment('recency_score', 'fm_score')} AS rfm_segment, "
        "purchase_periods, "
        "if(purchase_periods > 0, toInt64(purchase_periods) - 1, NULL) AS frequency, "
        "if(purchase_periods > 0, dateDiff('day', first_period, last_period), NULL) AS recency, "
        f"if(purchase_periods > 0, dateDiff('day', first_period, toDate32({end}, 'UTC')), NULL) AS t, "
        f"repeat_value FROM ({ranked}))"
    )


# What the RPC reads of each row: times as epoch microseconds (exact, and free of the driver's time zones).
_SELECT = (
    "SELECT person_id, historic_value, purchase_count, toUnixTimestamp64Micro(first_purchase_time), "
    "toUnixTimestamp64Micro(last_purchase_time), recency_days, recency_score, frequency_score, "
    "monetary_score, rfm_segment, purchase_periods, frequency, recency, t, repeat_value"
)


def _value(row: Sequence[Any]) -> PersonValue:
    (person_id, historic_value, purchase_count, first_us, last_us, recency_days, r, f, m, segment,
     periods, frequency, recency, t, repeat_value) = row[:15]  # fmt: skip
    lifetime = (
        LifetimeSummary(int(periods), int(frequency), int(recency), int(t), Decimal(repeat_value))
        if periods
        else None
    )
    return PersonValue(
        person_id=person_id,
        historic_value=Decimal(historic_value),
        purchase_count=int(purchase_count),
        first_purchase_time=from_micros(first_us) if first_us is not None else None,
        last_purchase_time=from_micros(last_us) if last_us is not None else None,
        recency_days=int(recency_days) if recency_days is not None else None,
        recency_score=int(r),
        frequency_score=int(f),
        monetary_score=int(m),
        segment=RfmSegment(segment),
        lifetime=lifetime,
    )


def _purchasers(spec: ValueSpec, population: Population, params: SqlParams) -> str:
    """The value rows of `population`'s purchasers (at least one purchase), for bulk mode and the summary."""
    return (
        f"{person_value_rows(spec, params)} WHERE purchase_count > 0 "
        f"AND ({population_sql(population, params)})"
    )


class ClickHouseCustomerValues(ReadModel):
    """CustomerValueStore on the journey store's ClickHouse client: one statement per call."""

    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        return current_persons(self._rows, tenant, identifiers)

    def values(self, tenant: str, spec: ValueSpec, person_ids: Sequence[str]) -> dict[str, PersonValue]:
        if not person_ids:
            return {}
        params = self._tenant_params(tenant)
        rows = person_value_rows(spec, params)
        wanted = params.bind(list(person_ids), "Array(String)")
        found = self._rows(f"{_SELECT} FROM {rows} WHERE person_id IN {wanted}", params, "valuing persons")
        return {v.person_id: v for v in map(_value, found)}

    def page(
        self,
        tenant: str,
        spec: ValueSpec,
        population: Population,
        after: PageCursor | None,
        limit: int,
        *,
        rfm_segments: Sequence[RfmSegment] = (),
    ) -> ValuePage:
        params = self._tenant_params(tenant)
        listed = f"SELECT * FROM {_purchasers(spec, population, params)}"
        if rfm_segments:
            chosen = params.bind([segment.value for segment in rfm_segments], "Array(String)")
            listed += f" AND rfm_segment IN {chosen}"
        keyset = "true"
        if after is not None:
            value = params.bind(str(after.historic_value), "Decimal(38, 9)")
            person = params.bind(after.person_id, "String")
            keyset = f"(historic_value < {value} OR (historic_value = {value} AND person_id > {person}))"
        sql = (
            f"{_SELECT}, total FROM (SELECT *, count() OVER () AS total FROM ({listed})) "
            f"WHERE {keyset} ORDER BY historic_value DESC, person_id ASC "
            f"LIMIT {params.bind(limit + 1, 'UInt32')}"
        )
        rows = self._rows(sql, params, "listing customer values")
        if rows:
            total = int(rows[0][15])
        else:  # past the end (or an empty population): the total still counts every page
            total = int(
                self._rows(f"SELECT count() FROM ({listed})", params, "counting customer values")[0][0]
            )
        return ValuePage([_value(r) for r in rows[:limit]], total, len(rows) > limit)

    def summary(self, tenant: str, spec: ValueSpec, population: Population) -> ValueSummary:
        params = self._tenant_params(tenant)
        levels = ", ".join(repr(q) for q in VALUE_QUANTILES)  # constants of this module, not input
        # One pass: a row per cell of the grid, and the overall row (the empty grouping set), told apart by
        # its recency score of 0 (every purchaser's is 1 to 5). Exact quantiles: one purchaser's value each.
        sql = (
            "SELECT recency_score, fm_score, count(), sum(historic_value), sum(purchase_count), "
            f"sum(assumeNotNull(recency_days)), quantilesExact({levels})(historic_value) "
            f"FROM {_purchasers(spec, population, params)} "
            "GROUP BY GROUPING SETS ((recency_score, fm_score), ()) ORDER BY recency_score, fm_score"
        )
        rows = self._rows(sql, params, "summarising customer values")
        cells = [
            CellSummary(int(r), int(fm), int(n), Decimal(value), int(purchases), int(days))
            for r, fm, n, value, purchases, days, _ in rows
            if r
        ]
        overall = next((row for row in rows if not row[0]), None)
        if overall is None or not overall[2]:  # no purchaser: ClickHouse still gives the empty set's row
            return ValueSummary(0, Decimal(0), 0, [], [])
        return ValueSummary(
            purchasers=int(overall[2]),
            historic_value=Decimal(overall[3]),
            purchase_count=int(overall[4]),
            cells=cells,
            quantiles=[Decimal(q) for q in overall[6]],
        )
