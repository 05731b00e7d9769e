"""ExportEvents: a time range's stored events, person after person, each person's oldest first, optionally
for a stable sample of persons. Free of protobuf and SQL (store/event_export.py holds the statements).

The export first lists its persons with their event counts (one aggregate statement; the sample, when
asked, is the persons with the lowest `stable_hash` of their id, so every call over the same range picks the
same ones), refuses it when the events exceed the server's limit, then reads the events of a batch of persons
at a time (about BATCH_EVENTS events per statement, so memory stays bounded and a statement's fixed cost is
shared) and cuts them into messages of about CHUNK_EVENTS events. A person's events may span two messages;
persons never interleave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from wayline_journeys.errors import QueryTooLarge
from wayline_journeys.events import EventRecord

__all__ = [
    "BATCH_EVENTS",
    "CHUNK_EVENTS",
    "EventExportQuery",
    "EventExportStore",
    "PersonCount",
    "export_events",
]

CHUNK_EVENTS = 1_000
"""Events per message of the stream."""
BATCH_EVENTS = 50_000
"""Events per store statement, about: a batch of whole persons."""


@dataclass(frozen=True)
class EventExportQuery:
    tenant: str
    start: datetime
    end: datetime  # exclusive
    max_persons: int = 0  # 0: every person
    event_names: tuple[str, ...] = ()  # empty: every name


@dataclass(frozen=True)
class PersonCount:
    person_id: str  # the current person (through the overrides)
    events: int


class EventExportStore(Protocol):
    def persons(self, query: EventExportQuery) -> list[PersonCount]:
        """The persons of the export (the sample when `max_persons` is set) with their event counts, by
        person id."""
        ...

    def events(self, query: EventExportQuery, person_ids: Sequence[str]) -> list[EventRecord]:
        """The range's events of these persons, by person id, then time, then event id."""
        ...


def _batches(persons: Sequence[PersonCount]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for person in persons:
        batch.append(person.person_id)
        size += person.events
        if size >= BATCH_EVENTS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def export_events(
    store: EventExportStore, query: EventExportQuery, max_events: int, keep_going: Callable[[], bool]
) -> Iterator[list[EventRecord]]:
    """The export's messages, each about CHUNK_EVENTS events; QueryTooLarge before any when the export holds
    more than `max_events` events. Stops early once `keep_going` says False (the caller went away)."""
    persons = store.persons(query)
    total = sum(p.events for p in persons)
    if total > max_events:
        raise QueryTooLarge(
            f"the range holds {total} events, above the server's limit of {max_events} per export; narrow "
            "time_range, set event_names or lower max_persons",
            quota_subject="export_events",
        )
    for batch in _batches(persons):
        if not keep_going():
            return
        records = store.events(query, batch)
        for start in range(0, len(records), CHUNK_EVENTS):
            yield records[start : start + CHUNK_EVENTS]
