"""Writing events: batched by group commit (chDB takes a few hundred single-row inserts a second, but
hundreds of thousands of rows a second in large blocks), idempotent by event id (see schema.py and ADR 0011:
a re-written event collapses with its earlier copies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wayline_journeys.events import EventRecord
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import INSERT_COLUMN_NAMES, row_of
from wayline_journeys.store.group_commit import GroupCommitWriter

__all__ = ["EventWriter"]


class EventWriter:
    """Thread-safe: concurrent writes share inserts, each returning once its rows are stored."""

    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db
        self._writer = GroupCommitWriter(self._insert)

    def write(self, tenant: str, events: Sequence[EventRecord]) -> int:
        """Store `events` for `tenant`; how many."""
        rows = [row_of(tenant, e) for e in events]
        if rows:
            self._writer.write(rows)
        return len(rows)

    def _insert(self, rows: list[Sequence[Any]]) -> None:
        self._db.insert("events", rows, INSERT_COLUMN_NAMES, "writing events")
