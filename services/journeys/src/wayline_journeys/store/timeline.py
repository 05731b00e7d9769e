"""GetTimeline's read model: one person's events across channels (the person named, or the one currently
holding an identifier), keyset-paged.

The anchor lookups (schema.py) name the few ranges of `events` that hold the subject's events, so a read
touches that data only, however large the table. A person's timeline holds the events whose current person is
that person, and every event's `person_id` is its current person.

Most persons have no override at all: no override row names them as source or target, so their timeline is
exactly the events stored with their id. A person's page is first read that way, in one statement that also
counts the override rows naming the person; only when it finds some (or no event) does the exact read follow:
one statement loads the anchors together with the live overrides of the persons involved
(PersonOverrideStore.timeline_subject), and a second reads the page through them. A person this process has
seen named by an override (it recorded one, or a first read found one: store/named_persons.py) skips the
first statement. On chDB every statement costs milliseconds before it reads anything (docs/journeys.md), and
a timeline is the read users wait on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from wayline_journeys.events import EventRecord, TimelineOrder, TimelinePage, TimelineQuery
from wayline_journeys.store.client import SHORT_READ, JourneyDatabase
from wayline_journeys.store.columns import READ_COLUMN_NAMES, record_from_row
from wayline_journeys.store.overrides import PersonOverrideStore
from wayline_journeys.store.person_sql import IDENTIFIER_MATCH, current_person_sql
from wayline_journeys.store.sql import override_rows_naming, person_anchors

__all__ = ["ClickHouseTimeline"]

_OVERRIDE_ROWS = override_rows_naming("{person:String}")


class ClickHouseTimeline:
    def __init__(self, db: JourneyDatabase, overrides: PersonOverrideStore) -> None:
        self._db = db
        self._overrides = overrides

    def timeline_page(self, query: TimelineQuery) -> TimelinePage:
        """One page of `query`'s person's events, in its order, after its cursor, read through the
        overrides. Asked by identifier, the person is the current person of the latest event carrying it
        (one statement more), and the page is that person's whole timeline, not only the events carrying
        the identifier (the contract: "the timeline of the person currently holding it"). Events stored
        without a person (written before identity resolved them) have no timeline but their identifier's:
        when no person holds the identifier, the page is the events that carry it."""
        if query.identifier is not None:
            mapping, anchors = self._overrides.timeline_subject(query)
            if not anchors:
                return TimelinePage([], "")  # no event carries the identifier
            person, parameters = current_person_sql(mapping)
            parameters |= {"anchors": anchors}
            parameters["identifier_type"], parameters["identifier_value"] = query.identifier
            holder = self._holder(query.tenant, person, parameters)
            if not holder:
                conditions = ["anchor IN {anchors:Array(UInt64)}", IDENTIFIER_MATCH]
                rows = self._page(query, person, conditions, parameters)
                return TimelinePage([record_from_row(row) for row in rows], "")
            query = replace(query, person_id=holder, identifier=None)
        if not self._overrides.named.named(query.tenant, query.person_id):
            page = self._page_without_overrides(query)
            if page is not None:
                return TimelinePage(page, query.person_id)
        mapping, anchors = self._overrides.timeline_subject(query)
        if not anchors:
            return TimelinePage([], query.person_id)  # no event was ever stored for the person
        person, parameters = current_person_sql(mapping)
        conditions = [
            "anchor IN {anchors:Array(UInt64)}",
            "person_id IN {stored_persons:Array(String)} AND current_person = {person:String}",
        ]
        parameters |= {
            "anchors": anchors,
            "stored_persons": mapping.stored_persons_of(query.person_id),
            "person": query.person_id,
        }
        rows = self._page(query, person, conditions, parameters)
        return TimelinePage([record_from_row(row) for row in rows], query.person_id)

    def _holder(self, tenant: str, person: str, parameters: dict[str, Any]) -> str:
        """The current person (the expression `person`) of the latest event in {anchors} carrying the
        identifier {identifier_type}/{identifier_value}; '' when it has none."""
        latest = self._db.rows(
            f"SELECT {person} FROM events FINAL WHERE tenant_id = {{tenant:String}} "
            f"AND anchor IN {{anchors:Array(UInt64)}} AND {IDENTIFIER_MATCH} "
            "ORDER BY timestamp DESC, toString(event_id) DESC LIMIT 1",
            parameters | {"tenant": tenant},
            "finding who holds an identifier",
            SHORT_READ,
        )
        return str(latest[0][0]) if latest else ""

    def _page_without_overrides(self, query: TimelineQuery) -> list[EventRecord] | None:
        """The person's page read as if no override concerned them, or None when some override row names
        them (or the page is empty, which may be why): then only the exact read answers."""
        conditions = [person_anchors("person_id = {person:String}")]
        parameters: dict[str, Any] = {"person": query.person_id}
        rows = self._page(
            query,
            "person_id",
            conditions,
            parameters,
            extra_columns=f", {_OVERRIDE_ROWS} AS override_rows",
            # Before FINAL, as relation.stored_events_of does and for its reason: exact for a person no
            # override names, which override_rows checks (ADR 97).
            prewhere="person_id = {person:String}",
        )
        if rows and rows[0][-1]:
            self._overrides.named.note(query.tenant, [query.person_id])
        if not rows or rows[0][-1]:
            return None
        return [record_from_row(row[: len(READ_COLUMN_NAMES)]) for row in rows]

    def _page(
        self,
        query: TimelineQuery,
        person: str,
        conditions: list[str],
        parameters: dict[str, Any],
        *,
        extra_columns: str = "",
        prewhere: str = "",
    ) -> list[tuple[Any, ...]]:
        """The rows of the page of the events meeting `prewhere` (applied before FINAL), `conditions` and
        `query`'s filters: READ_COLUMN_NAMES with the expression `person` (which conditions may name
        `current_person`) for person_id, then `extra_columns`."""
        conditions = ["tenant_id = {tenant:String}", *conditions]
        parameters |= {"tenant": query.tenant, "limit": query.limit}
        if query.channels:
            conditions.append("channel IN {channels:Array(String)}")
            parameters["channels"] = list(query.channels)
        if query.event_names:
            conditions.append("name IN {names:Array(String)}")
            parameters["names"] = list(query.event_names)
        if query.start is not None:
            conditions.append("timestamp >= {start:DateTime64(6, 'UTC')}")
            parameters["start"] = query.start
        if query.end is not None:
            conditions.append("timestamp < {end:DateTime64(6, 'UTC')}")
            parameters["end"] = query.end
        direction = "ASC" if query.order is TimelineOrder.OLDEST_FIRST else "DESC"
        if query.after is not None:
            comparison = ">" if query.order is TimelineOrder.OLDEST_FIRST else "<"
            conditions.append(
                f"(toUnixTimestamp64Micro(timestamp), toString(event_id)) {comparison} "
                "({after_us:Int64}, {after_id:String})"
            )
            parameters["after_us"] = query.after.timestamp_us
            parameters["after_id"] = query.after.event_id
        # The current person filters before LIMIT, so keyset paging stays exact. FINAL collapses the copies
        # of a re-written event; over the subject's few ranges it costs little (ADR 0011).
        columns = [f"{person} AS current_person" if c == "person_id" else c for c in READ_COLUMN_NAMES]
        sql = (
            f"SELECT {', '.join(columns)}{extra_columns} FROM events FINAL "
            + (f"PREWHERE {prewhere} " if prewhere else "")
            + f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY timestamp {direction}, toString(event_id) {direction} LIMIT {{limit:UInt32}}"
        )
        rows = self._db.rows(sql, parameters, "reading the timeline", SHORT_READ)
        return [tuple(row) for row in rows]
