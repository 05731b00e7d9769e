"""Tracking plans in SQL (SQLite embedded, PostgreSQL shared by replicas) through `wayline.common.sql`.

One table, one row per (tenant, plan); the column list below is the single source of the DDL, the rows
written and the rows read. Every statement is parameterised and every query names its tenant.

Writes that must see the tenant's other plans (the one-plan-per-channel rule, the etag check) run in one
transaction under a per-tenant lock, so two replicas cannot both enable overlapping plans: SQLite's
`BEGIN IMMEDIATE` already serialises writers, PostgreSQL takes a transaction-scoped advisory lock on the
tenant. Engine errors that mean "the store is not there" become UNAVAILABLE (retryable).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from wayline.common.sql import DATABASE_DOWN, Database, Transaction
from wayline.common.timestamps import from_micros, to_micros
from wayline_ingest.plans.errors import PlanStoreUnavailable, TrackingPlanExists, TrackingPlanOverlap
from wayline_ingest.plans.model import EventSchema, PlanPage, PlanSpec, TrackingPlan
from wayline_ingest.plans.rules import find_overlap

__all__ = ["TABLE", "PlanStore"]

TABLE = "ingest_tracking_plans"
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant", "TEXT NOT NULL"),
    ("plan_id", "TEXT NOT NULL"),
    ("display_name", "TEXT NOT NULL"),
    ("description", "TEXT NOT NULL"),
    ("mode", "TEXT NOT NULL"),
    ("channels", "TEXT NOT NULL"),  # a JSON list of channel names
    ("enabled", "INTEGER NOT NULL"),
    ("allow_unplanned_events", "INTEGER NOT NULL"),
    ("event_schemas", "TEXT NOT NULL"),  # a JSON list of EventSchema objects
    ("revision", "BIGINT NOT NULL"),
    ("create_time_us", "BIGINT NOT NULL"),
    ("update_time_us", "BIGINT NOT NULL"),
)
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)
    + ", PRIMARY KEY (tenant, plan_id))",
    # What the cache polls every second: enabled plans' revisions, read from the index alone.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_enabled ON {TABLE} (enabled, tenant, plan_id, revision)",
)
# Statements are composed only from the constants above, never from input (hence the S608 waivers).
_INSERT = f"INSERT INTO {TABLE} ({_NAMES}) VALUES ({', '.join('?' for _ in _COLUMNS)})"  # noqa: S608
_UPDATE = (
    f"UPDATE {TABLE} SET "  # noqa: S608
    + ", ".join(f"{name} = ?" for name, _ in _COLUMNS[2:])
    + " WHERE tenant = ? AND plan_id = ? AND revision = ?"
)
_SELECT_ONE = f"SELECT {_NAMES} FROM {TABLE} WHERE tenant = ? AND plan_id = ?"  # noqa: S608
_SELECT_PAGE = f"SELECT {_NAMES} FROM {TABLE} WHERE tenant = ? AND plan_id > ? ORDER BY plan_id LIMIT ?"  # noqa: S608
_SELECT_ENABLED = f"SELECT {_NAMES} FROM {TABLE} WHERE tenant = ? AND enabled = 1 ORDER BY plan_id"  # noqa: S608
_EXISTS = f"SELECT 1 FROM {TABLE} WHERE tenant = ? AND plan_id = ?"  # noqa: S608
_COUNT = f"SELECT COUNT(*) FROM {TABLE} WHERE tenant = ?"  # noqa: S608
_VERSIONS = f"SELECT tenant, plan_id, revision FROM {TABLE} WHERE enabled = 1"  # noqa: S608


def _row(plan: TrackingPlan) -> tuple[Any, ...]:
    spec = plan.spec
    return (
        plan.tenant,
        plan.plan_id,
        spec.display_name,
        spec.description,
        spec.mode,
        json.dumps(list(spec.channels)),
        int(spec.enabled),
        int(spec.allow_unplanned_events),
        json.dumps([asdict(s) for s in spec.event_schemas]),
        plan.revision,
        to_micros(plan.create_time),
        to_micros(plan.update_time),
    )


def _plan(row: tuple[Any, ...]) -> TrackingPlan:
    (tenant, plan_id, display, description, mode, channels, enabled, unplanned, schemas, revision, ct, ut) = (
        row
    )
    spec = PlanSpec(
        display_name=display,
        description=description,
        mode=mode,
        channels=tuple(json.loads(channels)),
        enabled=bool(enabled),
        allow_unplanned_events=bool(unplanned),
        event_schemas=tuple(EventSchema(**s) for s in json.loads(schemas)),
    )
    return TrackingPlan(
        tenant=tenant,
        plan_id=plan_id,
        spec=spec,
        revision=int(revision),
        create_time=from_micros(int(ct)),
        update_time=from_micros(int(ut)),
    )


def _lock_key(tenant: str) -> int:
    """A signed 64-bit advisory-lock key for the tenant's plans."""
    digest = hashlib.blake2b(f"wayline.ingest.tracking_plans:{tenant}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PlanStore:
    """Persistence of tracking plans; knows SQL, not protobuf nor the cache."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @contextmanager
    def _transaction(self, lock_tenant: str | None = None) -> Iterator[Transaction]:
        try:
            with self._db.transaction() as tx:
                if lock_tenant is not None and self._db.engine == "postgresql":
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(lock_tenant),))
                yield tx
        except DATABASE_DOWN as exc:
            raise PlanStoreUnavailable(
                "the tracking plan store cannot be reached; retry shortly", retry_after=1.0
            ) from exc

    def create_tables(self) -> None:
        """Create the table and its index when missing (idempotent; run at start)."""
        with self._transaction(lock_tenant="") as tx:  # one replica at a time creates the schema
            for statement in _DDL:
                tx.execute(statement)

    def insert(self, plan: TrackingPlan) -> None:
        """Store a new plan; ALREADY_EXISTS when its id is taken, FAILED_PRECONDITION when it overlaps."""
        with self._transaction(lock_tenant=plan.tenant) as tx:
            if tx.execute(_EXISTS, (plan.tenant, plan.plan_id)):
                raise TrackingPlanExists(
                    f"tracking plan {plan.name} already exists", metadata={"name": plan.name}
                )
            self._refuse_overlap(tx, plan)
            tx.execute(_INSERT, _row(plan))

    def get(self, tenant: str, plan_id: str) -> TrackingPlan | None:
        with self._transaction() as tx:
            rows = tx.execute(_SELECT_ONE, (tenant, plan_id))
        return _plan(rows[0]) if rows else None

    def page(self, tenant: str, after: str | None, limit: int) -> PlanPage:
        """Up to `limit` plans of `tenant` ordered by id, starting after the id `after`."""
        with self._transaction() as tx:
            rows = tx.execute(_SELECT_PAGE, (tenant, after or "", limit + 1))
            ((total,),) = tx.execute(_COUNT, (tenant,))
        plans = [_plan(r) for r in rows[:limit]]
        more = len(rows) > limit
        return PlanPage(plans=plans, next_after=plans[-1].plan_id if more else None, total_size=int(total))

    def update(
        self, tenant: str, plan_id: str, change: Callable[[TrackingPlan], TrackingPlan]
    ) -> TrackingPlan | None:
        """Replace the plan with `change(current)` atomically; None when there is no such plan.

        `change` may raise (a stale etag) to leave the plan as it is; the result must not overlap another
        enabled plan of the tenant (FAILED_PRECONDITION otherwise).
        """
        with self._transaction(lock_tenant=tenant) as tx:
            rows = tx.execute(_SELECT_ONE, (tenant, plan_id))
            if not rows:
                return None
            current = _plan(rows[0])
            updated = change(current)
            self._refuse_overlap(tx, updated)
            tx.execute(_UPDATE, (*_row(updated)[2:], tenant, plan_id, current.revision))
        return updated

    def _refuse_overlap(self, tx: Transaction, plan: TrackingPlan) -> None:
        if not plan.spec.enabled:
            return
        rows = tx.execute(_SELECT_ENABLED, (plan.tenant,))
        overlap = find_overlap(plan, (_plan(r) for r in rows))
        if overlap is not None:
            other, channels = overlap
            raise TrackingPlanOverlap(
                f"enabled tracking plan {other.name} already covers {', '.join(channels)}; disable it, or "
                "give the plans channels that do not overlap",
                metadata={"conflicting_plan": other.name, "channels": ",".join(channels)},
            )

    def enabled_versions(self) -> dict[str, dict[str, int]]:
        """The revision of every enabled plan, by tenant and plan id: the cache's cheap change probe."""
        with self._transaction() as tx:
            rows = tx.execute(_VERSIONS)
        versions: dict[str, dict[str, int]] = {}
        for tenant, plan_id, revision in rows:
            versions.setdefault(tenant, {})[plan_id] = int(revision)
        return versions

    def enabled_plans(self, tenant: str) -> list[TrackingPlan]:
        with self._transaction() as tx:
            rows = tx.execute(_SELECT_ENABLED, (tenant,))
        return [_plan(r) for r in rows]
