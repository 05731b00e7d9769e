"""The segment triggers' state in SQL, the same statements on SQLite and PostgreSQL, in the orchestrator's
one database: a cursor per (tenant, segment) in journeys' membership change feed, the record of each flow
version's entry of a segment's existing members, and each scheduled flow version's next occurrence.

Schedules are claimed like timers (store.py): a claim sets `lease_until` on due rows whose lease has passed
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas claim disjoint rows), and the claimer's progress
(the occurrence in hand, the members' page reached) is written only while the lease is still the one it set,
so a replica whose lease ran out cannot overwrite the one that took over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable

__all__ = ["MIGRATIONS", "NEVER", "FollowedVersion", "ScheduleRow", "SegmentStore"]

NEVER = 2**62  # the due time of a schedule with no occurrence left

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE flow_segment_cursors (tenant_id TEXT NOT NULL, segment TEXT NOT NULL,"
        " after_sequence BIGINT NOT NULL, PRIMARY KEY (tenant_id, segment))",
        "CREATE TABLE flow_segment_backfills (tenant_id TEXT NOT NULL, flow_id TEXT NOT NULL,"
        " version BIGINT NOT NULL, segment TEXT NOT NULL, page_token TEXT NOT NULL, done BIGINT NOT NULL,"
        " PRIMARY KEY (tenant_id, flow_id, version))",
        "CREATE TABLE flow_schedules (tenant_id TEXT NOT NULL, flow_id TEXT NOT NULL,"
        " version BIGINT NOT NULL, anchor_time BIGINT NOT NULL, due_time BIGINT NOT NULL,"
        " lease_until BIGINT NOT NULL, occurrence BIGINT NOT NULL, page_token TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, flow_id, version))",
        "CREATE INDEX flow_schedules_by_due ON flow_schedules (due_time)",
    ),
)
_SCHEDULE_COLUMNS = "tenant_id, flow_id, version, anchor_time, due_time, lease_until, occurrence, page_token"


@dataclass(frozen=True)
class FollowedVersion:
    """A published or paused flow's latest published version, whose definition names a segment."""

    tenant: str
    flow_id: str
    version: int
    published: bool  # False: paused
    publish_time: int
    definition: dict[str, Any]


@dataclass(frozen=True)
class ScheduleRow:
    """A scheduled flow version: its cadence's anchor, its next occurrence (`due_time`), and, while one is
    being fired, that occurrence and the next page of members to enter."""

    tenant: str
    flow_id: str
    version: int
    anchor_time: int
    due_time: int
    lease_until: int
    occurrence: int
    page_token: str


def _schedule(row: tuple[Any, ...]) -> ScheduleRow:
    tenant, flow_id, version, anchor, due, lease, occurrence, token = row
    return ScheduleRow(
        tenant, flow_id, int(version), int(anchor), int(due), int(lease), int(occurrence), token
    )


class SegmentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with unavailable_as(FlowStoreUnavailable):
            return migrate(self._db, "orchestrator_flow_segments", MIGRATIONS)

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            yield tx

    def followed(self, after: tuple[str, str], limit: int, tenant: str = "") -> list[FollowedVersion]:
        """The published and paused flows (after `after`, by tenant and flow id) whose latest version mentions
        a segment, with that version: of every tenant — the one query across tenants besides the claims, which
        finds the feeds to follow — or of `tenant` alone."""
        only = " AND f.tenant_id = ?" if tenant else ""
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT f.tenant_id, f.flow_id, f.state, v.version, v.publish_time, v.definition"
                " FROM flows f JOIN flow_versions v ON v.tenant_id = f.tenant_id AND v.flow_id = f.flow_id"
                " WHERE f.state IN ('PUBLISHED', 'PAUSED') AND (f.tenant_id > ? OR (f.tenant_id = ?"
                " AND f.flow_id > ?)) AND v.version = (SELECT MAX(m.version) FROM flow_versions m"
                f" WHERE m.tenant_id = f.tenant_id AND m.flow_id = f.flow_id){only}"
                " AND v.definition LIKE ? ORDER BY f.tenant_id, f.flow_id LIMIT ?",
                (after[0], after[0], after[1], *([tenant] if tenant else []), '%"segments/%', limit),
            )
        return [
            FollowedVersion(
                tenant, flow_id, int(version), state == "PUBLISHED", int(published), json.loads(definition)
            )
            for tenant, flow_id, state, version, published, definition in rows
        ]

    # Cursors.

    def cursor(self, tenant: str, segment: str) -> int:
        """The last feed position processed for the segment; 0 (from the oldest retained) when none."""
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT after_sequence FROM flow_segment_cursors WHERE tenant_id = ? AND segment = ?",
                (tenant, segment),
            )
        return int(rows[0][0]) if rows else 0

    def move_cursor(self, tenant: str, segment: str, after_sequence: int, *, back: bool = False) -> None:
        """Move the cursor forward to `after_sequence` (a replica behind never moves it back), or with `back`
        to wherever it is told (the resynchronisation after CURSOR_EXPIRED)."""
        guard = "" if back else " WHERE flow_segment_cursors.after_sequence < excluded.after_sequence"
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO flow_segment_cursors (tenant_id, segment, after_sequence) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, segment) DO UPDATE SET after_sequence = excluded.after_sequence"
                + guard,
                (tenant, segment, after_sequence),
            )

    # The entry of a segment's existing members, once per flow version.

    def backfill(self, tenant: str, flow_id: str, version: int, segment: str) -> str | None:
        """The next members' page token of the version's entry of existing members ('' at the start), or None
        when that entry is done."""
        with self._transaction() as tx:
            tx.execute(
                "INSERT INTO flow_segment_backfills (tenant_id, flow_id, version, segment, page_token, done)"
                " VALUES (?, ?, ?, ?, '', 0) ON CONFLICT DO NOTHING",
                (tenant, flow_id, version, segment),
            )
            rows = tx.execute(
                "SELECT page_token, done FROM flow_segment_backfills"
                " WHERE tenant_id = ? AND flow_id = ? AND version = ?",
                (tenant, flow_id, version),
            )
        token, done = rows[0]
        return None if done else str(token)

    def advance_backfill(self, tenant: str, flow_id: str, version: int, page_token: str) -> None:
        """Record the page reached; '' records the entry of existing members as done."""
        with self._transaction() as tx:
            tx.execute(
                "UPDATE flow_segment_backfills SET page_token = ?, done = ?"
                " WHERE tenant_id = ? AND flow_id = ? AND version = ?",
                (page_token, 0 if page_token else 1, tenant, flow_id, version),
            )

    # Schedules.

    def add_schedule(self, tenant: str, flow_id: str, version: int, anchor: int, due: int) -> bool:
        """Register a scheduled flow version with its first occurrence; False when it is known already."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"INSERT INTO flow_schedules ({_SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, 0, '')"
                " ON CONFLICT DO NOTHING RETURNING flow_id",
                (tenant, flow_id, version, anchor, due),
            )
        return bool(rows)

    def claim_schedules(self, now: int, limit: int, lease_us: int) -> list[ScheduleRow]:
        """Claim up to `limit` schedules due at `now` whose lease has passed, for `lease_us`."""
        skip = " FOR UPDATE SKIP LOCKED" if self._db.engine == "postgresql" else ""
        with self._transaction() as tx:
            rows = tx.execute(
                "UPDATE flow_schedules SET lease_until = ? WHERE (tenant_id, flow_id, version) IN"
                " (SELECT tenant_id, flow_id, version FROM flow_schedules WHERE due_time <= ?"
                f" AND lease_until <= ? ORDER BY due_time LIMIT ?{skip}) RETURNING {_SCHEDULE_COLUMNS}",
                (now + lease_us, now, now, limit),
            )
        return sorted((_schedule(row) for row in rows), key=lambda s: s.due_time)

    def progress(
        self, row: ScheduleRow, lease_until: int, occurrence: int, page_token: str, due: int
    ) -> ScheduleRow | None:
        """Write a claimed schedule's progress — and its new lease — if the claim is still `row`'s: the row as
        written, or None when another replica has taken it over."""
        with self._transaction() as tx:
            rows = tx.execute(
                "UPDATE flow_schedules SET occurrence = ?, page_token = ?, due_time = ?, lease_until = ?"
                " WHERE tenant_id = ? AND flow_id = ? AND version = ? AND lease_until = ? RETURNING flow_id",
                (
                    occurrence,
                    page_token,
                    due,
                    lease_until,
                    row.tenant,
                    row.flow_id,
                    row.version,
                    row.lease_until,
                ),
            )
        if not rows:
            return None
        return replace(
            row, lease_until=lease_until, occurrence=occurrence, page_token=page_token, due_time=due
        )

    def schedules(self, tenant: str) -> list[ScheduleRow]:
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_SCHEDULE_COLUMNS} FROM flow_schedules WHERE tenant_id = ?"
                " ORDER BY flow_id, version",
                (tenant,),
            )
        return [_schedule(row) for row in rows]
