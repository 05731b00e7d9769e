"""Erasing a person's events (DeletePersonEvents and erased overrides from identity's feed).

A lightweight DELETE masks the rows: it returns once the mask is written (lightweight_deletes_sync, on by
default), and every later read skips them, so no tombstone table has to be consulted by every query, and
events of the person written later are stored and read again as the contract says. The mask only hides rows
until a merge drops them, at no set time, so an asynchronous APPLY DELETED MASK (ClickHouse's guidance for
deletions that must reach the disk) rewrites the touched parts in the background. Rows are deleted by event
id: every copy of an erased event goes, also an older copy written under another person before a replay.
The anchor lookups of the touched anchors are rebuilt from the events that remain, so no identifier of the
person survives in them.
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline_journeys.overrides import OverrideMapping
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.person_sql import current_person_sql
from wayline_journeys.store.schema import lookup_rebuilds
from wayline_journeys.store.sql import identifier_anchors, person_anchors

__all__ = ["EventEraser"]


# The events stored under {stored_persons:Array(String)}.
_PERSON_ANCHORS = person_anchors("person_id IN {stored_persons:Array(String)}")


# The events carrying one of {pairs:Array(Tuple(String, String))}.
_PAIRS_ANCHORS = identifier_anchors(
    "(identifier_type, identifier_value) IN {pairs:Array(Tuple(String, String))}"
)

_ERASE_CHUNK = 10_000  # event ids per DELETE: one mutation for almost every person, bounded statements


class EventEraser:
    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db

    def erase_person(
        self,
        tenant: str,
        person_id: str,
        mapping: OverrideMapping,
        identifiers: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Erase every event that reads as `person_id` through `mapping`, and every event carrying one of
        `identifiers`; return how many there were."""
        person, parameters = current_person_sql(mapping)
        parameters |= {
            "tenant": tenant,
            "person": person_id,
            "stored_persons": mapping.stored_persons_of(person_id),
        }
        found = self._db.rows(
            f"SELECT event_id, anchor FROM events FINAL WHERE tenant_id = {{tenant:String}} "
            f"AND {_PERSON_ANCHORS} "
            f"AND person_id IN {{stored_persons:Array(String)}} AND {person} = {{person:String}}",
            parameters,
            "finding a person's events",
        )
        events = {str(event_id): int(anchor) for event_id, anchor in found}
        if identifiers:
            carrying = self._db.rows(
                "SELECT event_id, anchor FROM events FINAL WHERE tenant_id = {tenant:String} "
                f"AND {_PAIRS_ANCHORS} "
                "AND hasAny(arrayZip(arrayMap(t -> toString(t), identifier_types), identifier_values), "
                "{pairs:Array(Tuple(String, String))})",
                {"tenant": tenant, "pairs": [tuple(i) for i in identifiers]},
                "finding the events carrying a person's identifiers",
            )
            events |= {str(event_id): int(anchor) for event_id, anchor in carrying}
        if not events:
            return 0
        topology = self._db.topology
        ids = list(events)
        anchors = sorted(set(events.values()))
        for start in range(0, len(ids), _ERASE_CHUNK):
            self._db.command(
                f"DELETE FROM {topology.local('events')}{topology.on_cluster} "
                "WHERE tenant_id = {tenant:String} AND anchor IN {anchors:Array(UInt64)} "
                "AND event_id IN {ids:Array(UUID)}",
                {"tenant": tenant, "anchors": anchors, "ids": ids[start : start + _ERASE_CHUNK]},
                "erasing a person's events",
            )
            # Their copies indexed by decision (store/decision_tables.py): a person's decision traces go too.
            self._db.command(
                f"DELETE FROM {topology.local('decision_events')}{topology.on_cluster} "
                "WHERE tenant_id = {tenant:String} AND event_id IN {ids:Array(UUID)}",
                {"tenant": tenant, "ids": ids[start : start + _ERASE_CHUNK]},
                "erasing a person's decision events",
            )
        for statement in lookup_rebuilds(topology):
            self._db.command(statement, {"tenant": tenant, "anchors": anchors}, "rebuilding anchor lookups")
        for table in ("events", "person_anchors", "identifier_anchors", "decision_events"):
            self._db.command(
                f"ALTER TABLE {topology.local(table)}{topology.on_cluster} APPLY DELETED MASK",
                {},
                "purging erased rows",
                settings={"mutations_sync": 0},
            )
        return len(events)
