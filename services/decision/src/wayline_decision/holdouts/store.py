"""Holdout configs in SQL, one row per tenant, the same statements on SQLite and PostgreSQL. The groups are
one JSON document (they are read and replaced as a whole); writes are conditional on the version read, so
two replicas cannot both apply an update made against the same etag."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager

from wayline.common.sql import DATABASE_DOWN, Database, Transaction, migrate
from wayline_decision.errors import HoldoutStoreUnavailable
from wayline_decision.holdouts.model import HoldoutConfig, HoldoutGroup, Treatment

__all__ = ["MIGRATIONS", "HoldoutStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE holdout_configs (tenant_id TEXT NOT NULL PRIMARY KEY, version BIGINT NOT NULL,"
        " update_time BIGINT NOT NULL, body TEXT NOT NULL)",
    ),
)


def _body(config: HoldoutConfig) -> str:
    return json.dumps([dataclasses.asdict(group) for group in config.groups], sort_keys=True)


def _groups(body: str) -> tuple[HoldoutGroup, ...]:
    groups = []
    for fields in json.loads(body):
        fields["models"] = tuple(fields["models"])
        fields["placements"] = tuple(fields["placements"])
        fields["treatment"] = Treatment(fields["treatment"])
        groups.append(HoldoutGroup(**fields))
    return tuple(groups)


class HoldoutStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with self._guard():
            return migrate(self._db, "decision_holdouts", MIGRATIONS)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except DATABASE_DOWN as down:
            raise HoldoutStoreUnavailable() from down

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._guard(), self._db.transaction() as tx:
            yield tx

    def get(self, tenant: str) -> HoldoutConfig:
        """The tenant's config; an empty one at version 0 when it was never set."""
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT version, update_time, body FROM holdout_configs WHERE tenant_id = ?", (tenant,)
            )
        if not rows:
            return HoldoutConfig()
        version, update_time, body = rows[0]
        return HoldoutConfig(_groups(body), int(version), int(update_time))

    def put(self, tenant: str, config: HoldoutConfig, read_version: int) -> bool:
        """Write `config` if the stored one is still at `read_version` (0: none stored); False otherwise."""
        with self._transaction() as tx:
            if read_version == 0:
                rows = tx.execute(
                    "INSERT INTO holdout_configs (tenant_id, version, update_time, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
                    (tenant, config.version, config.update_time, _body(config)),
                )
            else:
                rows = tx.execute(
                    "UPDATE holdout_configs SET version = ?, update_time = ?, body = ?"
                    " WHERE tenant_id = ? AND version = ? RETURNING tenant_id",
                    (config.version, config.update_time, _body(config), tenant, read_version),
                )
        return bool(rows)
