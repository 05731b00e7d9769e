"""EventNamesReadModel on ClickHouse: one GROUP BY name over the tenant's events (read as their current
persons, so the person counts follow merges), ranked and cut after the cursor in the same statement."""

from __future__ import annotations

from datetime import UTC

from wayline_journeys.event_names import EventNameCount, EventNamesQuery
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

__all__ = ["ClickHouseEventNames", "event_names_sql"]

_DATETIME = "DateTime64(6, 'UTC')"


def event_names_sql(query: EventNamesQuery, params: SqlParams) -> str:
    """(name, event count, person count, last seen) of the page, in page order."""
    kinds = ["name != ''"]
    if query.name_prefix:
        kinds.append(f"startsWith(name, {params.bind(query.name_prefix, 'String')})")
    stored = []
    if query.time_range.start is not None:
        stored.append(f"timestamp >= {params.bind(query.time_range.start, _DATETIME)}")
    if query.time_range.end is not None:
        stored.append(f"timestamp < {params.bind(query.time_range.end, _DATETIME)}")
    relation = current_events(
        params,
        where=" AND ".join(f"({c})" for c in stored) or "true",
        kinds=" AND ".join(f"({c})" for c in kinds),
    )
    having = ""
    if query.after is not None:
        count = params.bind(query.after.event_count, "UInt64")
        name = params.bind(query.after.name, "String")
        having = f"HAVING events < {count} OR (events = {count} AND name > {name}) "
    return (
        "SELECT name, count() AS events, uniqExact(person_id) AS persons, max(timestamp) AS last_seen "
        f"FROM {relation} GROUP BY name {having}"
        f"ORDER BY events DESC, name LIMIT {params.bind(query.limit, 'UInt32')}"
    )


class ClickHouseEventNames(ReadModel):
    """EventNamesReadModel on the journey store's ClickHouse client."""

    def names(self, query: EventNamesQuery) -> list[EventNameCount]:
        params = self._tenant_params(query.tenant)
        rows = self._rows(event_names_sql(query, params), params, "listing event names")
        return [
            EventNameCount(str(name), int(events), int(persons), last_seen.replace(tzinfo=UTC))
            for name, events, persons, last_seen in rows
        ]
