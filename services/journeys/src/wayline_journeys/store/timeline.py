"""GetTimeline's read model: one person's events (or one identifier's) across channels, keyset-paged.

The anchor lookups (schema.py) name the few ranges of `events` that hold the subject's events, so a read
touches that data only, however large the table. One statement loads them together with the live overrides
of the persons involved (PersonOverrideStore.timeline_subject), and a second reads the page: a person's
timeline holds the events whose current person is that person, and every event's `person_id` is its current
person.
"""

from __future__ import annotations

from wayline_journeys.events import TimelineOrder, TimelinePage, TimelineQuery
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import READ_COLUMN_NAMES, record_from_row
from wayline_journeys.store.overrides import PersonOverrideStore
from wayline_journeys.store.person_sql import IDENTIFIER_MATCH, current_person_sql

__all__ = ["ClickHouseTimeline"]


class ClickHouseTimeline:
    def __init__(self, db: JourneyDatabase, overrides: PersonOverrideStore) -> None:
        self._db = db
        self._overrides = overrides

    def timeline_page(self, query: TimelineQuery) -> TimelinePage:
        """One page of `query`'s events, in its order, after its cursor, read through the overrides, and
        whose timeline it is (for an identifier: the current person of the latest event carrying it, one
        statement more)."""
        mapping, anchors = self._overrides.timeline_subject(query)
        if not anchors:
            return TimelinePage([], query.person_id)  # no event was ever stored for the subject
        person, parameters = current_person_sql(mapping)
        conditions = ["tenant_id = {tenant:String}", "anchor IN {anchors:Array(UInt64)}"]
        parameters |= {"tenant": query.tenant, "limit": query.limit, "anchors": anchors}
        if query.person_id:
            conditions.append(
                "person_id IN {stored_persons:Array(String)} AND current_person = {person:String}"
            )
            parameters["stored_persons"] = mapping.stored_persons_of(query.person_id)
            parameters["person"] = query.person_id
        if query.identifier is not None:
            conditions.append(IDENTIFIER_MATCH)
            parameters["identifier_type"], parameters["identifier_value"] = query.identifier
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
        # The mapping filters before LIMIT, so keyset paging stays exact. FINAL collapses the copies of a
        # re-written event; over the subject's few ranges it costs little (ADR 0011).
        columns = [f"{person} AS current_person" if c == "person_id" else c for c in READ_COLUMN_NAMES]
        sql = (
            f"SELECT {', '.join(columns)} FROM events FINAL "
            f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY timestamp {direction}, toString(event_id) {direction} LIMIT {{limit:UInt32}}"
        )
        rows = self._db.rows(sql, parameters, "reading the timeline")
        holder = query.person_id
        if query.identifier is not None:
            latest = self._db.rows(
                f"SELECT {person} FROM events FINAL WHERE tenant_id = {{tenant:String}} "
                f"AND anchor IN {{anchors:Array(UInt64)}} AND {IDENTIFIER_MATCH} "
                "ORDER BY timestamp DESC, toString(event_id) DESC LIMIT 1",
                parameters,
                "finding who holds an identifier",
            )
            holder = str(latest[0][0]) if latest else ""
        return TimelinePage([record_from_row(row) for row in rows], holder)
