"""Breakdown values in SQL: the raw JSON of the anchoring event's channel or property (or of the person's
trait), turned into the series value as BreakdownValue has it, and the ranking that keeps the `limit` largest
values and sums the rest into `other`.

A value is text: a string without quotes, a number as ClickHouse's shortest decimal (`42`, `1.5`), `true` or
`false`, an object or list as compact JSON. Absent and null are the `missing` series.
"""

from __future__ import annotations

from wayline_journeys.analytics import Breakdown, BreakdownDimension
from wayline_journeys.store.matching import (
    event_property_raw,
    json_is_bool,
    json_is_null,
    json_is_number,
    json_is_string,
    latest_trait_sql,
)
from wayline_journeys.store.segments import segment_memberships_sql
from wayline_journeys.store.sql import SqlParams

__all__ = [
    "NO_EVENT_BREAKDOWN",
    "event_breakdown_raw",
    "json_text",
    "person_breakdown",
    "ranked_series",
    "series_of_raw",
]


def json_text(raw: str) -> str:
    """The text of the raw JSON `raw` ('' when absent or null)."""
    return (
        f"multiIf({json_is_null(raw)}, '', {json_is_string(raw)}, JSONExtractString({raw}), "
        f"{json_is_number(raw)}, toString(JSONExtractFloat({raw})), {json_is_bool(raw)}, {raw}, {raw})"
    )


def series_of_raw(raw: str) -> str:
    """(value, missing) of a breakdown's raw JSON."""
    return f"tuple({json_text(raw)}, {json_is_null(raw)})"


NO_EVENT_BREAKDOWN = "''"


def event_breakdown_raw(breakdown: Breakdown, params: SqlParams) -> str:
    """The raw JSON, on an event row, that the breakdown reads (NO_EVENT_BREAKDOWN for none or for a
    `person.` property, which `person_breakdown` joins)."""
    if breakdown.dimension is BreakdownDimension.CHANNEL:
        return "toJSONString(channel)"
    if breakdown.dimension is BreakdownDimension.PROPERTY and not breakdown.property.startswith("person."):
        return event_property_raw(breakdown.property, params)
    return NO_EVENT_BREAKDOWN


def person_breakdown(breakdown: Breakdown, params: SqlParams, relation: str) -> str | None:
    """For a breakdown by something of the person, a subquery of (person_id, raw) to LEFT JOIN on person_id
    (a person without a row is in the `missing` series); None for a breakdown by something of an event.

    - `person.` property: one row per person, the trait's latest value in their identify events (the meaning
      of `person.` paths everywhere).
    - segment: one row per listed segment the person is a current member of, its name as a JSON string, so a
      person in several segments counts in each (`segment_memberships_sql`)."""
    if breakdown.dimension is BreakdownDimension.SEGMENT:
        return f"({segment_memberships_sql(breakdown.segments, params)})"
    if breakdown.dimension is not BreakdownDimension.PROPERTY or not breakdown.property.startswith("person."):
        return None
    key = params.bind(breakdown.property.removeprefix("person."), "String")
    return f"({latest_trait_sql(key, relation)})"


def ranked_series(rows: str, weight: str, limit: int, params: SqlParams) -> str:
    """`rows` (a subquery with a `bd` column of (value, missing)) with a `series` column of (value, other,
    missing): the `limit` values of the largest total `weight` keep theirs (ties by value), the others become
    the `other` series. `weight` is an expression over a row, summed per value."""
    keep = params.bind(limit, "UInt32")
    return (
        f"(SELECT *, if(dense_rank() OVER (ORDER BY bd_total DESC, bd) <= {keep}, "
        f"tuple(bd.1, false, bd.2), tuple('', true, false)) AS series "
        f"FROM (SELECT *, sum({weight}) OVER (PARTITION BY bd) AS bd_total FROM {rows}))"
    )
