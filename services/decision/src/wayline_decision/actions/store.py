"""The catalogue in SQL, the same statements on SQLite (embedded) and PostgreSQL (production). Every query is
scoped by tenant. The columns a list filters or orders by are columns; the rest of an action is one JSON
document, so a new field is a code change, not a migration. Writes are conditional on the version read
(optimistic concurrency), so two replicas cannot both apply a change made against the same etag."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wayline.common.sql import DATABASE_DOWN, Database, Transaction, migrate
from wayline_decision.actions.model import Action, ActionState, Eligibility
from wayline_decision.errors import ActionStoreUnavailable

__all__ = ["MIGRATIONS", "ActionStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE actions (tenant_id TEXT NOT NULL, action_id TEXT NOT NULL, state TEXT NOT NULL,"
        " channel TEXT NOT NULL, version BIGINT NOT NULL, create_time BIGINT NOT NULL,"
        " update_time BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, action_id))",
    ),
)
_COLUMNS = "tenant_id, action_id, state, channel, version, create_time, update_time, body"
_BODY_EXCLUDES = {"action_id", "state", "version", "create_time", "update_time"}


def _row(tenant: str, action: Action) -> tuple[Any, ...]:
    body = {k: v for k, v in dataclasses.asdict(action).items() if k not in _BODY_EXCLUDES}
    return (
        tenant,
        action.action_id,
        action.state.value,
        action.channel,
        action.version,
        action.create_time,
        action.update_time,
        json.dumps(body, sort_keys=True),
    )


def _action(row: tuple[Any, ...]) -> Action:
    _, action_id, state, _, version, create_time, update_time, body = row
    fields = json.loads(body)
    e = fields.pop("eligibility")
    eligibility = Eligibility(
        required_segments=tuple(e["required_segments"]),
        excluded_segments=tuple(e["excluded_segments"]),
        lifecycle_stages=tuple(e["lifecycle_stages"]),
        required_consent=e["required_consent"],
        required_reachable_channel=e["required_reachable_channel"],
    )
    fields["placements"] = tuple(fields["placements"])
    return Action(
        action_id=action_id,
        state=ActionState(state),
        version=int(version),
        create_time=int(create_time),
        update_time=int(update_time),
        eligibility=eligibility,
        **fields,
    )


class ActionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with self._guard():
            return migrate(self._db, "decision_actions", MIGRATIONS)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except DATABASE_DOWN as down:
            raise ActionStoreUnavailable() from down

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._guard(), self._db.transaction() as tx:
            yield tx

    def insert(self, tenant: str, action: Action) -> bool:
        """Store a new action; False (and nothing written) when the tenant already has its id."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"INSERT INTO actions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, action_id) DO NOTHING RETURNING action_id",
                _row(tenant, action),
            )
        return bool(rows)

    def get(self, tenant: str, action_id: str) -> Action | None:
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE tenant_id = ? AND action_id = ?", (tenant, action_id)
            )
        return _action(rows[0]) if rows else None

    def page(
        self, tenant: str, after: str, limit: int, state: str = "", channel: str = ""
    ) -> tuple[list[Action], int]:
        """Up to `limit` actions with ids after `after`, by id, and how many match the filters in all."""
        where, params = "tenant_id = ?", [tenant]
        if state:
            where, params = where + " AND state = ?", [*params, state]
        if channel:
            where, params = where + " AND channel = ?", [*params, channel]
        with self._transaction() as tx:
            total = tx.execute(f"SELECT COUNT(*) FROM actions WHERE {where}", params)[0][0]
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE {where} AND action_id > ? ORDER BY action_id LIMIT ?",
                [*params, after, limit],
            )
        return [_action(row) for row in rows], int(total)

    def replace(self, tenant: str, action: Action, read_version: int) -> bool:
        """Write `action` over the stored one if that is still at `read_version`; False otherwise."""
        row = _row(tenant, action)
        with self._transaction() as tx:
            rows = tx.execute(
                "UPDATE actions SET state = ?, channel = ?, version = ?, update_time = ?, body = ?"
                " WHERE tenant_id = ? AND action_id = ? AND version = ? RETURNING action_id",
                (row[2], row[3], row[4], row[6], row[7], tenant, action.action_id, read_version),
            )
        return bool(rows)
