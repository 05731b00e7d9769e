"""ExportEvents' statements (event_export.py): the persons of a range with their event counts (the stable
sample's when asked), then the events of a batch of them. Both read `relation.current_events`, so a merged
person's events come under the survivor, and both are scoped by tenant and parameterised. A batch's read is
narrowed to the anchors of its persons (and of the persons merged into them), so the export reads the
range about once in all rather than once per batch.

Events stored without a person (before identity resolved them) belong to no person's history and are left
out, as the flows' runtime never sees them either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wayline_journeys.event_export import EventExportQuery, PersonCount
from wayline_journeys.events import EventRecord
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import EVENT_COLUMNS
from wayline_journeys.store.features import stable_hash_sql
from wayline_journeys.store.relation import RELATION_COLUMNS, current_events
from wayline_journeys.store.sql import SqlParams, person_anchors
from wayline_journeys.training_set import SAMPLE_SALT

__all__ = ["ClickHouseEventExport"]

_COLUMNS = {c.name: c for c in EVENT_COLUMNS}
# The stored person ids that may read as one of {persons}: themselves, and every person an override (of any
# version, person-wide or scoped) sends to one of them. A superset: the relation then applies the exact rule,
# and the anchors of these persons bound what a batch reads to its persons' ranges of `events`.
_STORED_UNDER = (
    "(person_id IN {persons:Array(String)} OR person_id IN (SELECT person_id FROM person_overrides "
    "WHERE tenant_id = {tenant:String} AND override_person_id IN {persons:Array(String)}))"
)
_READ = (*RELATION_COLUMNS, "person_id")


def _record(row: Sequence[Any]) -> EventRecord:
    values: dict[str, Any] = {}
    for name, value in zip(_READ, row, strict=True):
        column = _COLUMNS[name]
        values[column.field] = column.from_db(value) if column.from_db else value
    return EventRecord(**values)


class ClickHouseEventExport:
    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db

    def _relation(self, query: EventExportQuery, params: SqlParams, *narrowing: str) -> str:
        """The range's events read through the overrides; `narrowing` adds conditions on stored columns."""
        stored = [
            "timestamp >= {start:DateTime64(6, 'UTC')}",
            "timestamp < {end:DateTime64(6, 'UTC')}",
            *narrowing,
        ]
        params.values |= {"tenant": query.tenant, "start": query.start, "end": query.end}
        if query.event_names:
            stored.append("name IN {names:Array(String)}")
            params.values["names"] = list(query.event_names)
        return current_events(params, where=" AND ".join(stored))

    def persons(self, query: EventExportQuery) -> list[PersonCount]:
        params = SqlParams()
        relation = self._relation(query, params)
        sql = f"SELECT person_id, count() FROM {relation} WHERE person_id != '' GROUP BY person_id"
        if query.max_persons:
            order = stable_hash_sql(SAMPLE_SALT, "person_id", params)
            sql += f" ORDER BY {order}, person_id LIMIT {params.named('most', query.max_persons, 'UInt32')}"
        rows = self._db.rows(sql, params.values, "listing the persons of an export")
        return sorted((PersonCount(str(p), int(n)) for p, n in rows), key=lambda p: p.person_id)

    def events(self, query: EventExportQuery, person_ids: Sequence[str]) -> list[EventRecord]:
        params = SqlParams(persons=list(person_ids))
        relation = self._relation(query, params, _STORED_UNDER, person_anchors(_STORED_UNDER))
        rows = self._db.rows(
            f"SELECT {', '.join(_READ)} FROM {relation} WHERE person_id IN {{persons:Array(String)}} "
            "ORDER BY person_id, timestamp, toString(event_id)",
            params.values,
            "exporting events",
        )
        return [_record(row) for row in rows]
