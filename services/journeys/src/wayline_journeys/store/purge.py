"""Purging erased rows from disk: one APPLY DELETED MASK per table for all the erasures of an interval.

A lightweight DELETE only masks rows (erasure.py): every read skips them at once, and ClickHouse drops them
from disk at the part's next merge, at no set time. APPLY DELETED MASK rewrites every part that holds masked
rows, every column of it. Run after each erasure (until 2026-12-05), that rewrite of the events' large parts
came before the next erasure's DELETE, which waited for it: a burst of erasures paid one rewrite of the big
parts each, and the cost grows with the parts. ClickHouse's guidance is to apply masks sparingly, on a
schedule. So erasures only note the tables they masked rows in, and every `interval` one APPLY per noted
table takes them all: erased rows are unreadable at once and off the disk within the interval plus the
rewrite. At start the tables that hold masked rows are purged once (a mask a stopped process left behind),
and at stop what is still noted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog

from wayline_journeys.background import Periodic
from wayline_journeys.store.client import JourneyDatabase

__all__ = ["ERASED_TABLES", "DeletedRowsPurge"]

log = structlog.get_logger("wayline.journeys.purge")

# Every table an erasure masks rows in (erasure.py; overrides.py for person_overrides).
ERASED_TABLES = (
    "events",
    "decision_events",
    "person_timelines",
    "person_anchors",
    "identifier_anchors",
    "person_overrides",
)
_SHARDED = frozenset(ERASED_TABLES) - {"person_overrides"}  # named through the topology's local tables


class DeletedRowsPurge:
    """Thread-safe. `interval` 0 purges at once, in the noting thread (the tests' store, and a deployment
    that wants the old behaviour)."""

    def __init__(self, db: JourneyDatabase, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._noted: set[str] = set()
        self._lock = threading.Lock()
        self._periodic = Periodic("journeys-purge", interval, self.purge, "journeys.purge_failed")

    def note(self, tables: Iterable[str]) -> None:
        """`tables` hold rows an erasure masked."""
        with self._lock:
            self._noted.update(tables)
        if not self._interval:
            self.purge()

    def purge(self, tables: Iterable[str] = ()) -> list[str]:
        """Apply the masks of the noted tables and of `tables` now (asynchronously in ClickHouse); which."""
        with self._lock:
            due = sorted(self._noted | set(tables))
            self._noted.clear()
        topology = self._db.topology
        for table in due:
            name = topology.local(table) if table in _SHARDED else table
            try:
                self._db.command(
                    f"ALTER TABLE {name}{topology.on_cluster} APPLY DELETED MASK",
                    {},
                    "purging erased rows",
                    settings={"mutations_sync": 0},
                )
            except Exception:  # the rows stay masked (unreadable); the next pass tries again
                log.warning("journeys.purge_failed", table=table, exc_info=True)
                with self._lock:
                    self._noted.add(table)
        return due

    def start(self) -> None:
        """Purge the tables a stopped process left masked rows in, then the noted ones every interval (a
        thread)."""
        self.purge(self._masked_tables())
        self._periodic.start()

    def _masked_tables(self) -> list[str]:
        """The erased tables with a part that holds masked rows, or a mutation not done. An APPLY on a table
        without masked rows still writes every part again (a mutation), and ClickHouse then loads the new
        parts' column statistics for each statement until its next refresh (ADR 101): on every restart, for
        every table. On a cluster each host knows only its own parts: all of them, as before."""
        topology = self._db.topology
        if topology.clustered:
            return list(ERASED_TABLES)
        local = {topology.local(table) if table in _SHARDED else table: table for table in ERASED_TABLES}
        # A DELETE still running when the process stopped masks its rows later: its table too.
        rows = self._db.rows(
            "SELECT table FROM system.parts WHERE database = currentDatabase() AND active "
            "AND has_lightweight_delete AND table IN {tables:Array(String)} UNION DISTINCT "
            "SELECT table FROM system.mutations WHERE database = currentDatabase() "
            "AND NOT is_done AND table IN {tables:Array(String)}",
            {"tables": list(local)},
            "finding masked rows",
        )
        return sorted(local[str(table)] for (table,) in rows)

    def stop(self) -> None:
        """Purge what is noted and stop; before the store closes."""
        self._periodic.stop()
        self.purge()
