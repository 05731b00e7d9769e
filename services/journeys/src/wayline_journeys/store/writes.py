"""Writing events: batched by group commit (chDB takes a few hundred single-row inserts a second, but
hundreds of thousands of rows a second in large blocks), idempotent by event id (see schema.py and ADR 0011:
a re-written event collapses with its earlier copies).

Each caller's events become one Arrow table in the caller's own thread (columns.py's `arrow_table`); the
group's leader concatenates the tables of everyone waiting (no copy) and sends them as one `insert_arrow`,
which ClickHouse parses column by column, so no Python work is left per row in the shared INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import EventRecord
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import arrow_table
from wayline_journeys.store.group_commit import GroupCommitWriter

__all__ = ["EventWriter"]


class EventWriter:
    """Thread-safe: concurrent writes share inserts, each returning once its rows are stored."""

    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db
        self._writer: GroupCommitWriter[pa.Table] = GroupCommitWriter(self._insert, pa.concat_tables)

    def write(self, tenant: str, events: EventColumns | Sequence[EventRecord]) -> int:
        """Store `events` for `tenant`; how many."""
        columns = events if isinstance(events, EventColumns) else EventColumns.of(events)
        if columns:
            self._writer.write(arrow_table(tenant, columns))
        return len(columns)

    def _insert(self, table: pa.Table) -> None:
        self._db.run(lambda: self._db.client.insert_arrow("events", table), "writing events")
