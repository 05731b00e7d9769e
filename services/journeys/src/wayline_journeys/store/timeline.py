"""GetTimeline's read model: one person's events across channels (the person named, or the one currently
holding an identifier), keyset-paged.

The anchor lookups (schema.py) name the few ranges of `events` that hold the subject's events, so a read
touches that data only, however large the table. A person's timeline holds the events whose current person is
that person, and every event's `person_id` is its current person.

Most persons have no override at all: no override row names them as source or target, so their timeline is
exactly the events stored with their id. A person's page is first read that way, from `person_timelines`
(store/person_timelines.py: each person's events in time order, in few columns), in one statement that
also returns the marker row an override naming the person leaves there; only when it finds one does the
exact read from `events` follow: one statement loads the anchors together with the live
overrides of the persons involved (PersonOverrideStore.timeline_subject), and a second reads the page
through them. A person this process has seen named by an override (it recorded one, or a first read found
one: store/named_persons.py) skips the first statement. On chDB every statement costs milliseconds before
it reads anything, and every column of every part it reads more (docs/journeys.md); a timeline is the read
users wait on (ADR 99).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from wayline_journeys.events import EventRecord, TimelineOrder, TimelinePage, TimelineQuery
from wayline_journeys.store.client import SHORT_READ, JourneyDatabase
from wayline_journeys.store.columns import READ_COLUMN_NAMES, record_from_row
from wayline_journeys.store.overrides import PersonOverrideStore
from wayline_journeys.store.person_sql import IDENTIFIER_MATCH, current_person_sql
from wayline_journeys.store.person_timelines import MARKER_EVENT_ID, ROW_COLUMNS, record_from_timeline_row

__all__ = ["ClickHouseTimeline"]

_MARKER = f"event_id = toUUID('{MARKER_EVENT_ID}')"


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
            page = self._page_as_stored(query)
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

    def _page_as_stored(self, query: TimelineQuery) -> list[EventRecord] | None:
        """The person's page read as if no override concerned them, or None when an override names them (its
        marker row, which no filter drops, comes first): then only the exact read answers. The newest copy of
        each event id is taken before the filters, as FINAL would (a retry may carry another time).

        The person is chosen in WHERE, which ClickHouse moves to PREWHERE itself, not in an explicit PREWHERE:
        ClickHouse 26.9's query condition cache stored the outer filter's verdict (no row of the person has
        the name asked for) under the explicit PREWHERE's key, so the person's next unfiltered page skipped
        their granules and came back empty (254 of 1,500 random pages wrong; none in WHERE, ADR 100)."""
        filters, parameters, direction = _filters(query)
        parameters |= {"person": query.person_id}
        # The name and channel are in the payload too: read as columns only to filter on them.
        filtered = [c for c, asked in (("name", query.event_names), ("channel", query.channels)) if asked]
        columns = ", ".join(ROW_COLUMNS)
        wanted = f"{_MARKER} OR ({' AND '.join(filters)})" if filters else "true"
        rows = self._db.rows(
            f"SELECT {columns} FROM (SELECT {', '.join([*ROW_COLUMNS, *filtered])} FROM person_timelines "
            "WHERE tenant_id = {tenant:String} AND person_id = {person:String} "
            f"ORDER BY received_at DESC LIMIT 1 BY event_id) "
            f"WHERE {wanted} "
            f"ORDER BY {_MARKER} DESC, timestamp {direction}, toString(event_id) {direction} "
            "LIMIT {limit:UInt32}",
            parameters,
            "reading the timeline",
            SHORT_READ,
        )
        if rows and str(rows[0][1]) == MARKER_EVENT_ID:
            self._overrides.named.note(query.tenant, [query.person_id])
            return None
        return [record_from_timeline_row(query.person_id, row) for row in rows]

    def _page(
        self,
        query: TimelineQuery,
        person: str,
        conditions: list[str],
        parameters: dict[str, Any],
    ) -> list[tuple[Any, ...]]:
        """The rows of the page of `events` meeting `conditions` and `query`'s filters: READ_COLUMN_NAMES with
        the expression `person` (which conditions may name `current_person`) for person_id."""
        filters, filter_parameters, direction = _filters(query)
        conditions = ["tenant_id = {tenant:String}", *conditions, *filters]
        # The current person filters before LIMIT, so keyset paging stays exact. FINAL collapses the copies
        # of a re-written event; over the subject's few ranges it costs little (ADR 0011).
        columns = [f"{person} AS current_person" if c == "person_id" else c for c in READ_COLUMN_NAMES]
        sql = (
            f"SELECT {', '.join(columns)} FROM events FINAL WHERE {' AND '.join(conditions)} "
            f"ORDER BY timestamp {direction}, toString(event_id) {direction} LIMIT {{limit:UInt32}}"
        )
        rows = self._db.rows(sql, parameters | filter_parameters, "reading the timeline", SHORT_READ)
        return [tuple(row) for row in rows]


def _filters(query: TimelineQuery) -> tuple[list[str], dict[str, Any], str]:
    """`query`'s conditions on a page's events (channels, names, time range, the cursor), their parameters
    with the tenant and the page's size, and the page's direction."""
    filters: list[str] = []
    parameters: dict[str, Any] = {"tenant": query.tenant, "limit": query.limit}
    if query.channels:
        filters.append("channel IN {channels:Array(String)}")
        parameters["channels"] = list(query.channels)
    if query.event_names:
        filters.append("name IN {names:Array(String)}")
        parameters["names"] = list(query.event_names)
    if query.start is not None:
        filters.append("timestamp >= {start:DateTime64(6, 'UTC')}")
        parameters["start"] = query.start
    if query.end is not None:
        filters.append("timestamp < {end:DateTime64(6, 'UTC')}")
        parameters["end"] = query.end
    direction = "ASC" if query.order is TimelineOrder.OLDEST_FIRST else "DESC"
    if query.after is not None:
        comparison = ">" if query.order is TimelineOrder.OLDEST_FIRST else "<"
        filters.append(
            f"(toUnixTimestamp64Micro(timestamp), toString(event_id)) {comparison} "
            "({after_us:Int64}, {after_id:String})"
        )
        parameters["after_us"] = query.after.timestamp_us
        parameters["after_id"] = query.after.event_id
    return filters, parameters, direction
