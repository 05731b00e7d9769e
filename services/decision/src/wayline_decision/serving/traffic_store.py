"""Every model's traffic in SQL (SQLite embedded, PostgreSQL when replicas share it), one row per tenant and
model. A write is conditional on the generation it was made against, so of two admins (or replicas)
changing one model's traffic at once exactly one wins and the other applies its change again to what won.
Replicas poll the rows and load what changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wayline.common.sql import DATABASE_DOWN, Database, migrate
from wayline_decision.errors import TrafficStoreUnavailable
from wayline_decision.serving.traffic import Traffic

__all__ = ["MIGRATIONS", "TrafficStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE model_traffic (tenant_id TEXT NOT NULL, model_id TEXT NOT NULL,"
        " stable_version TEXT NOT NULL, canary_version TEXT NOT NULL,"
        " canary_basis_points BIGINT NOT NULL, shadow_version TEXT NOT NULL,"
        " previous_stable_version TEXT NOT NULL, update_time_us BIGINT NOT NULL,"
        " generation BIGINT NOT NULL, PRIMARY KEY (tenant_id, model_id))",
    ),
)
# One column list: the DDL above, the SELECTs and the row parsing follow it.
_VALUES = (
    "stable_version, canary_version, canary_basis_points, shadow_version, previous_stable_version,"
    " update_time_us, generation"
)


def _traffic(model_id: str, row: tuple[Any, ...]) -> Traffic:
    stable, canary, basis_points, shadow, previous, update_time_us, generation = row
    return Traffic(
        model_id=model_id,
        stable_version=stable,
        canary_version=canary,
        canary_basis_points=int(basis_points),
        shadow_version=shadow,
        previous_stable_version=previous,
        update_time_us=int(update_time_us),
        generation=int(generation),
    )


def _values(traffic: Traffic) -> tuple[Any, ...]:
    return (
        traffic.stable_version,
        traffic.canary_version,
        traffic.canary_basis_points,
        traffic.shadow_version,
        traffic.previous_stable_version,
        traffic.update_time_us,
        traffic.generation,
    )


class TrafficStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with self._guard():
            return migrate(self._db, "decision_traffic", MIGRATIONS)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except DATABASE_DOWN as down:
            raise TrafficStoreUnavailable() from down

    def get(self, tenant: str, model_id: str) -> Traffic:
        """The model's traffic; generation 0 and no versions when it was never deployed."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_VALUES} FROM model_traffic WHERE tenant_id = ? AND model_id = ?",
                (tenant, model_id),
            )
        return _traffic(model_id, rows[0]) if rows else Traffic(model_id)

    def of_tenant(self, tenant: str) -> dict[str, Traffic]:
        """Model id → traffic, for the tenant's deployed models."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(f"SELECT model_id, {_VALUES} FROM model_traffic WHERE tenant_id = ?", (tenant,))
        return {row[0]: _traffic(row[0], row[1:]) for row in rows}

    def everything(self) -> dict[tuple[str, str], Traffic]:
        """(tenant, model id) → traffic, for every tenant: what a replica serves."""
        with self._guard(), self._db.transaction() as tx:
            rows = tx.execute(f"SELECT tenant_id, model_id, {_VALUES} FROM model_traffic")
        return {(row[0], row[1]): _traffic(row[1], row[2:]) for row in rows}

    def replace(self, tenant: str, traffic: Traffic, read_generation: int) -> bool:
        """Store `traffic` (whose generation is `read_generation` + 1) if the row is still at
        `read_generation` (0: absent); False when another change landed first."""
        with self._guard(), self._db.transaction() as tx:
            if read_generation == 0:
                rows = tx.execute(
                    f"INSERT INTO model_traffic (tenant_id, model_id, {_VALUES})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant_id, model_id) DO NOTHING RETURNING generation",
                    (tenant, traffic.model_id, *_values(traffic)),
                )
            else:
                rows = tx.execute(
                    "UPDATE model_traffic SET stable_version = ?, canary_version = ?,"
                    " canary_basis_points = ?, shadow_version = ?, previous_stable_version = ?,"
                    " update_time_us = ?, generation = ?"
                    " WHERE tenant_id = ? AND model_id = ? AND generation = ? RETURNING generation",
                    (*_values(traffic), tenant, traffic.model_id, read_generation),
                )
        return bool(rows)
