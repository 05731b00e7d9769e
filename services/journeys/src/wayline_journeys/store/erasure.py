"""Erasing a person's events (DeletePersonEvents and erased overrides from identity's feed).

A lightweight DELETE masks the rows: it returns once the mask is written (lightweight_deletes_sync, on by
default), and every later read skips them, so no tombstone table has to be consulted by every query (an
event of the person stored after the erasure is swept up later: erasure_sweep.py). The mask only hides rows
until a merge drops them, at no set time, so the erasure notes the tables it masked rows in, and an APPLY
DELETED MASK (ClickHouse's guidance for deletions that must reach the disk) rewrites their parts for all the
erasures of an interval (purge.py). Rows are deleted by event
id: every copy of an erased event goes, also an older copy written under another person before a replay,
and its copies in `person_timelines` and `decision_events`.
The anchor lookups of the touched anchors are rebuilt from the events that remain, so no identifier of the
person survives in them.

Several persons are erased together (BatchDeletePersonEvents, a run of the feed's `erased` markers): one
find and one DELETE per table for all of them. On a store whose parts are merging (a live stream's), a DELETE
waits for the merges of the parts it touches, seconds whatever it deletes; a batch pays that once (ADR 96).

An erasure is done only once a read finds nothing of the person left. After deleting, the events are looked
for again, and so are the decision-indexed copies of those erased: an event of the person stored while the
erasure ran (ingest resolved it to the person just before identity erased them), or a mask the engine did
not keep (the suite once read an erased `Decision Logged` event back after a DELETE that had returned; a
concurrent-DELETE race of this kind is reported against ClickHouse 26.x), is deleted in another pass. Rows
still there after the last pass fail the call (UNAVAILABLE): identity retries the step, and never records
as done an erasure whose rows a read still returns. Each look again waits first until no mutation is running
on the tables it reads (up to `SETTLE_SECONDS`): another erasure's DELETE or the purge's APPLY DELETED MASK
(asynchronous) running beside ours is where a mask can be lost, and a look made while it runs would not see
that (the suite read an erased decision copy back right after an erasure returned, on 2026-12-05 and again
on 2026-12-06, each time with another tenant's erasure or the purge running).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from wayline_journeys.erasures import PersonToErase
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.overrides import OverrideMapping
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.decision_tables import DECISION_EVENT_NAMES
from wayline_journeys.store.person_sql import current_person_sql
from wayline_journeys.store.schema import lookup_rebuilds
from wayline_journeys.store.sql import identifier_anchors, person_anchors

__all__ = ["ERASE_PASSES", "EventEraser"]

log = structlog.get_logger("wayline.journeys.erasure")

# The events stored under {stored_persons:Array(String)}.
_PERSON_ANCHORS = person_anchors("person_id IN {stored_persons:Array(String)}")


# The events carrying one of {pairs:Array(Tuple(String, String))}.
_PAIRS_ANCHORS = identifier_anchors(
    "(identifier_type, identifier_value) IN {pairs:Array(Tuple(String, String))}"
)

# What an erased event is found with: its anchor (the range its DELETE names), for the decision service's
# events the decision id its copy in `decision_events` is keyed by (decision_tables.py extracts it alike),
# and what tells which of the batch's persons it is erased for (see `_owners`).
_FOUND_COLUMNS = (
    "event_id, anchor, if(name IN {decision_names:Array(String)}, "
    "JSONExtractString(properties, 'decision_id'), '') AS decision_id"
)
_PAIRS = "arrayZip(arrayMap(t -> toString(t), identifier_types), identifier_values)"

_ERASE_CHUNK = 10_000  # event ids per DELETE: one mutation for almost every person, bounded statements
ERASE_PASSES = 3  # deletes of what a read still finds, before the call fails and identity retries it
SETTLE_SECONDS = 30.0  # the longest a look again waits for the mutations running on its tables
_LOOKED_AT = ("events", "decision_events", "person_timelines")  # the tables a look again reads


@dataclass(frozen=True)
class _Stored:
    anchor: int
    decision_id: str  # "" unless the event reads as a decision's (its copy in decision_events checked by it)
    owner: int  # the index of the first person of the batch it is erased for


class EventEraser:
    def __init__(self, db: JourneyDatabase, on_masked: Callable[[Iterable[str]], None]) -> None:
        """`on_masked` is told the tables an erasure masked rows in (purge.py applies the masks)."""
        self._db = db
        self._on_masked = on_masked

    def erase_persons(
        self,
        tenant: str,
        persons: Sequence[PersonToErase],
        mapping: OverrideMapping,
        received_by: datetime | None = None,
    ) -> list[int]:
        """Erase every event that reads as one of `persons` through `mapping` (the live overrides of them all)
        or carries one of their identifiers, of those received by `received_by` if set; how many events for
        each person, in order (an event counts for the first person it is erased for)."""
        erased: dict[str, _Stored] = {}
        for _ in range(ERASE_PASSES):
            if erased:
                self._settle()  # a look again: once the mutations beside ours are done
            left = (
                self._find(tenant, persons, mapping, received_by)
                | self._decision_copies_left(tenant, erased)
                | self._timeline_copies_left(tenant, erased)
            )
            if not left:
                break
            if erased:
                log.warning(
                    "journeys.erasure_found_more",
                    tenant=tenant,
                    person_ids=[p.person_id for p in persons][:20],
                    events=len(left),
                )
            self._delete(tenant, left)
            erased |= {event_id: stored for event_id, stored in left.items() if event_id not in erased}
        else:
            raise StoreUnavailable(
                f"{len(left)} events of the persons were still read after {ERASE_PASSES - 1} deletes;"
                " retry the erasure"
            )
        if erased:
            self._purge(tenant, erased)
        counts = [0] * len(persons)
        for stored in erased.values():
            counts[stored.owner] += 1
        return counts

    def _find(
        self,
        tenant: str,
        persons: Sequence[PersonToErase],
        mapping: OverrideMapping,
        received_by: datetime | None,
    ) -> dict[str, _Stored]:
        by_person: dict[str, int] = {}
        for index, target in enumerate(persons):
            by_person.setdefault(target.person_id, index)
        person, parameters = current_person_sql(mapping)
        parameters |= {
            "tenant": tenant,
            "persons": list(by_person),
            "stored_persons": sorted({s for p in by_person for s in mapping.stored_persons_of(p)}),
            "decision_names": list(DECISION_EVENT_NAMES),
        }
        received = ""
        if received_by is not None:
            received = " AND received_at <= {received_by:DateTime64(6, 'UTC')}"
            parameters["received_by"] = received_by
        found: dict[str, _Stored] = {}
        for event_id, anchor, decision, current in self._db.rows(
            f"SELECT {_FOUND_COLUMNS}, {person} AS current FROM events FINAL "
            f"WHERE tenant_id = {{tenant:String}} AND {_PERSON_ANCHORS} "
            f"AND person_id IN {{stored_persons:Array(String)}} AND current IN {{persons:Array(String)}}"
            f"{received}",
            parameters,
            "finding persons' events",
        ):
            found[str(event_id)] = _Stored(int(anchor), str(decision), by_person[str(current)])
        owners = _owners(persons)
        if owners:
            for event_id, anchor, decision, pairs in self._db.rows(
                f"SELECT {_FOUND_COLUMNS}, {_PAIRS} FROM events FINAL WHERE tenant_id = {{tenant:String}} "
                f"AND {_PAIRS_ANCHORS} AND hasAny({_PAIRS}, {{pairs:Array(Tuple(String, String))}})"
                + received,
                {
                    "tenant": tenant,
                    "pairs": list(owners),
                    "decision_names": list(DECISION_EVENT_NAMES),
                    "received_by": received_by,
                },
                "finding the events carrying persons' identifiers",
            ):
                if str(event_id) not in found:
                    given = (owners.get((str(k), str(v))) for k, v in pairs)
                    owner = min((i for i in given if i is not None), default=0)
                    found[str(event_id)] = _Stored(int(anchor), str(decision), owner)
        return found

    def _settle(self) -> None:
        """Wait until no mutation is running on the tables a look again reads, `SETTLE_SECONDS` at most
        (then look anyway: a read that still finds rows fails the call, and identity retries)."""
        tables = [self._db.topology.local(t) for t in _LOOKED_AT]
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            (running,), *_ = self._db.rows(
                # A mutation that keeps failing is retried by the engine for ever: nothing to wait for.
                "SELECT count() FROM system.mutations WHERE database = currentDatabase() "
                "AND table IN {tables:Array(String)} AND NOT is_done AND latest_fail_reason = ''",
                {"tables": tables},
                "waiting for the mutations on the erased tables",
            )
            if not int(running):
                return
            time.sleep(0.05)
        log.warning("journeys.erasure_mutations_still_running", tables=tables, seconds=SETTLE_SECONDS)

    def _decision_copies_left(self, tenant: str, erased: Mapping[str, _Stored]) -> dict[str, _Stored]:
        """The erased decision events whose copy a read of `decision_events` still returns."""
        decisions = sorted({s.decision_id for s in erased.values() if s.decision_id})
        if not decisions:
            return {}
        left = self._db.rows(
            "SELECT event_id FROM decision_events FINAL WHERE tenant_id = {tenant:String} "
            "AND decision_id IN {decisions:Array(String)} AND event_id IN {ids:Array(UUID)}",
            {
                "tenant": tenant,
                "decisions": decisions,
                "ids": [i for i, s in erased.items() if s.decision_id],
            },
            "finding persons' decision events",
        )
        return {str(event_id): erased[str(event_id)] for (event_id,) in left}

    def _timeline_copies_left(self, tenant: str, erased: Mapping[str, _Stored]) -> dict[str, _Stored]:
        """The erased events whose copy a read of `person_timelines` still returns."""
        if not erased:
            return {}
        left = self._timeline_copies(tenant, list(erased))
        return {event_id: erased[event_id] for _, event_id in left}

    def _timeline_copies(self, tenant: str, ids: list[str]) -> list[tuple[str, str]]:
        """(stored person, event id) of each copy of the events `ids` in `person_timelines`: under every
        person the event was ever stored under (a replay after identity moved it stores it anew), so found
        by event id (the table's bloom filter index), not by the erased person."""
        rows = self._db.rows(
            "SELECT DISTINCT person_id, event_id FROM person_timelines WHERE tenant_id = {tenant:String} "
            "AND event_id IN {ids:Array(UUID)}",
            {"tenant": tenant, "ids": ids},
            "finding persons' timeline copies",
        )
        return [(str(person), str(event_id)) for person, event_id in rows]

    def _delete(self, tenant: str, events: Mapping[str, _Stored]) -> None:
        """The events' copies first, then the events: another erasure of the same person (the feed's marker
        beside identity's call, on this replica or another) that no longer finds the events can answer done,
        and must find their copies gone too."""
        topology = self._db.topology
        ids = list(events)
        for start in range(0, len(ids), _ERASE_CHUNK):
            chunk = {i: events[i] for i in ids[start : start + _ERASE_CHUNK]}
            # Their copies indexed by decision (store/decision_tables.py), by event id alone: also a copy an
            # older write of the event id made while it was a decision event and its newest copy is not.
            self._db.command(
                f"DELETE FROM {topology.local('decision_events')}{topology.on_cluster} "
                "WHERE tenant_id = {tenant:String} AND event_id IN {ids:Array(UUID)}",
                {"tenant": tenant, "ids": list(chunk)},
                "erasing persons' decision events",
            )
            # Their copies by person, the persons' key ranges named so the DELETE touches those only.
            stored = sorted({person for person, _ in self._timeline_copies(tenant, list(chunk))})
            if stored:
                self._db.command(
                    f"DELETE FROM {topology.local('person_timelines')}{topology.on_cluster} "
                    "WHERE tenant_id = {tenant:String} AND person_id IN {stored:Array(String)} "
                    "AND event_id IN {ids:Array(UUID)}",
                    {"tenant": tenant, "stored": stored, "ids": list(chunk)},
                    "erasing persons' timeline copies",
                )
            self._db.command(
                f"DELETE FROM {topology.local('events')}{topology.on_cluster} "
                "WHERE tenant_id = {tenant:String} AND anchor IN {anchors:Array(UInt64)} "
                "AND event_id IN {ids:Array(UUID)}",
                {"tenant": tenant, "anchors": sorted({s.anchor for s in chunk.values()}), "ids": list(chunk)},
                "erasing persons' events",
            )

    def _purge(self, tenant: str, erased: Mapping[str, _Stored]) -> None:
        """Rebuild the lookups of the erased events' anchors, and have the masked rows taken off the disk."""
        anchors = sorted({s.anchor for s in erased.values()})
        for statement in lookup_rebuilds(self._db.topology):
            self._db.command(statement, {"tenant": tenant, "anchors": anchors}, "rebuilding anchor lookups")
        self._on_masked(
            ["events", "decision_events", "person_timelines", "person_anchors", "identifier_anchors"]
        )


def _owners(persons: Sequence[PersonToErase]) -> dict[tuple[str, str], int]:
    """Each identifier to erase with, and the index of the first person it is given with."""
    owners: dict[tuple[str, str], int] = {}
    for index, target in enumerate(persons):
        for pair in target.identifiers:
            owners.setdefault((str(pair[0]), str(pair[1])), index)
    return owners
