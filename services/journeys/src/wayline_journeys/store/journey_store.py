"""The journey store as the service assembles it: one database (per-thread connections, migrations) and the
parts that write, read timelines and erase events. It holds no SQL of its own; each part is its own module
(writes.py, timeline.py, erasure.py) and the servicer depends on them through small Protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from clickhouse_connect.driver.client import Client

from wayline_journeys.erasures import PersonToErase
from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import EventRecord, TimelinePage, TimelineQuery
from wayline_journeys.overrides import OverrideMapping
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.erasure import EventEraser
from wayline_journeys.store.overrides import PersonOverrideStore
from wayline_journeys.store.purge import DeletedRowsPurge
from wayline_journeys.store.timeline import ClickHouseTimeline
from wayline_journeys.store.topology import Topology
from wayline_journeys.store.writes import EventWriter

__all__ = ["JourneyStore"]


class JourneyStore(JourneyDatabase):
    """Satisfies EventWrites, TimelineReads (events.py) and EventErasure (person_changes.py)."""

    def __init__(
        self, connect: Callable[[], Client], topology: Topology | None = None, purge_seconds: float = 0.0
    ) -> None:
        """`purge_seconds`: how often erased rows are taken off the disk (purge.py; 0: at each erasure). The
        service starts and stops `purge`."""
        super().__init__(connect, topology)
        self._writer = EventWriter(self)
        self.purge = DeletedRowsPurge(self, purge_seconds)
        self.overrides = PersonOverrideStore(lambda: self.client, self.purge.note)
        self._timeline = ClickHouseTimeline(self, self.overrides)
        self._eraser = EventEraser(self, self.purge.note)

    def write(self, tenant: str, events: EventColumns | Sequence[EventRecord]) -> int:
        return self._writer.write(tenant, events)

    def timeline(self, query: TimelineQuery) -> list[EventRecord]:
        return self._timeline.timeline_page(query).events

    def timeline_page(self, query: TimelineQuery) -> TimelinePage:
        return self._timeline.timeline_page(query)

    def erase_persons(
        self,
        tenant: str,
        persons: Sequence[PersonToErase],
        mapping: OverrideMapping,
        received_by: datetime | None = None,
    ) -> list[int]:
        return self._eraser.erase_persons(tenant, persons, mapping, received_by)
