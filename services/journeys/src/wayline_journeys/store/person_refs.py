"""Identifiers → their current persons in ClickHouse (person_refs.IdentifierResolver), for every store that
resolves them.

The identifier_anchors lookup (schema.py) names the anchors that hold the identifiers' events, so the
statement reads those ranges of `events` only, not the tenant's whole history; the events relation then
reads each event as its current person, and the latest event (by timestamp, then event id) carrying an
identifier names it. Lookup rows may outlive their events (schema.py); the events themselves are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import EVENT_ID_ORDER, SqlParams, identifier_anchors

__all__ = ["current_persons"]

_PAIRS = "arrayZip(arrayMap(t -> toString(t), identifier_types), identifier_values)"

_Query = Callable[[str, SqlParams, str], Sequence[Sequence[Any]]]
"""A store's way to run a statement: (sql, params, what it is doing for the error) → rows."""


def current_persons(
    query: _Query, tenant: str, identifiers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The current person of the latest event carrying each identifier, in one statement run by `query`;
    identifiers no event carries are missing."""
    if not identifiers:
        return {}
    params = SqlParams(tenant=tenant)
    pairs = params.bind([tuple(i) for i in identifiers], "Array(Tuple(String, String))")
    values = params.bind(sorted({v for _, v in identifiers}), "Array(String)")
    anchors = identifier_anchors(f"(identifier_type, identifier_value) IN {pairs}")
    relation = current_events(
        params, where=f"{anchors} AND hasAny(identifier_values, {values}) AND hasAny({_PAIRS}, {pairs})"
    )
    sql = (
        f"SELECT pair.1, pair.2, argMax(person_id, (timestamp, {EVENT_ID_ORDER})) FROM {relation} "
        f"ARRAY JOIN arrayFilter(p -> has({_PAIRS}, p), {pairs}) AS pair GROUP BY pair"
    )
    return {(t, v): person for t, v, person in query(sql, params, "resolving identifiers")}
