"""Flows in SQL, the same statements on SQLite (embedded) and PostgreSQL (production), in the orchestrator's
one database (the ledger's setting). Every query is scoped by tenant.

`flows` holds each flow with its draft: the columns a list filters or orders by are columns, the rest one
JSON document (a new field is a code change, not a migration). `flow_versions` holds each published
version's definition, written once and never changed: persons who entered with a version keep it. A write
is conditional on the revision read (optimistic concurrency), and a publication writes the flow and its new
version in one transaction, so two publishers cannot both make version n.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable
from wayline_orchestrator.flows.model import Definition, Flow, FlowState, PauseMode

__all__ = ["MIGRATIONS", "FlowStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE flows (tenant_id TEXT NOT NULL, flow_id TEXT NOT NULL, state TEXT NOT NULL,"
        " revision BIGINT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (tenant_id, flow_id))",
        "CREATE TABLE flow_versions (tenant_id TEXT NOT NULL, flow_id TEXT NOT NULL, version BIGINT NOT NULL,"
        " publish_time BIGINT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (tenant_id, flow_id, version))",
    ),
)
_COLUMNS = "flow_id, state, revision, create_time, update_time, body"


def _body(flow: Flow) -> str:
    return json.dumps(
        {
            "display_name": flow.display_name,
            "description": flow.description,
            "definition": flow.definition,
            "pause_mode": flow.pause_mode.value if flow.pause_mode else None,
            "published_version": flow.published_version,
            "published_digest": flow.published_digest,
            "publish_time": flow.publish_time,
        },
        sort_keys=True,
    )


def _flow(row: tuple[Any, ...]) -> Flow:
    flow_id, state, revision, create_time, update_time, body = row
    fields = json.loads(body)
    mode = fields.pop("pause_mode")
    return Flow(
        flow_id=flow_id,
        state=FlowState(state),
        revision=int(revision),
        create_time=int(create_time),
        update_time=int(update_time),
        pause_mode=PauseMode(mode) if mode else None,
        **fields,
    )


class FlowStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with unavailable_as(FlowStoreUnavailable):
            return migrate(self._db, "orchestrator_flows", MIGRATIONS)

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            yield tx

    @contextmanager
    def _snapshot(self) -> Iterator[Transaction]:
        with unavailable_as(FlowStoreUnavailable), self._db.snapshot() as tx:
            yield tx

    def insert(self, tenant: str, flow: Flow) -> bool:
        """Store a new flow; False (and nothing written) when the tenant already has its id."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"INSERT INTO flows (tenant_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, flow_id) DO NOTHING RETURNING flow_id",
                (
                    tenant,
                    flow.flow_id,
                    flow.state.value,
                    flow.revision,
                    flow.create_time,
                    flow.update_time,
                    _body(flow),
                ),
            )
        return bool(rows)

    def get(self, tenant: str, flow_id: str) -> Flow | None:
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM flows WHERE tenant_id = ? AND flow_id = ?", (tenant, flow_id)
            )
        return _flow(rows[0]) if rows else None

    def page(self, tenant: str, after: str, limit: int, state: str = "") -> tuple[list[Flow], int]:
        """Up to `limit` flows with ids after `after`, by id, and how many match the filter in all."""
        where, params = "tenant_id = ?", [tenant]
        if state:
            where, params = where + " AND state = ?", [*params, state]
        # A snapshot: ObserveEvents reads the published flows on every call, and must not queue for the
        # writers' lock to find that an event concerns none of them.
        with self._snapshot() as tx:
            total = tx.execute(f"SELECT COUNT(*) FROM flows WHERE {where}", params)[0][0]
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM flows WHERE {where} AND flow_id > ? ORDER BY flow_id LIMIT ?",
                [*params, after, limit],
            )
        return [_flow(row) for row in rows], int(total)

    def replace(self, tenant: str, flow: Flow, read_revision: int, publish: Definition | None = None) -> bool:
        """Write `flow` over the stored one if that is still at `read_revision` (False otherwise), and with
        `publish`, add it as the flow's version `flow.published_version`, in the same transaction."""
        with self._transaction() as tx:
            rows = tx.execute(
                "UPDATE flows SET state = ?, revision = ?, update_time = ?, body = ?"
                " WHERE tenant_id = ? AND flow_id = ? AND revision = ? RETURNING flow_id",
                (
                    flow.state.value,
                    flow.revision,
                    flow.update_time,
                    _body(flow),
                    tenant,
                    flow.flow_id,
                    read_revision,
                ),
            )
            if rows and publish is not None:
                tx.execute(
                    "INSERT INTO flow_versions (tenant_id, flow_id, version, publish_time, definition)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        tenant,
                        flow.flow_id,
                        flow.published_version,
                        flow.publish_time or flow.update_time,
                        json.dumps(publish, sort_keys=True),
                    ),
                )
        return bool(rows)

    def version(self, tenant: str, flow_id: str, version: int) -> tuple[Definition, int] | None:
        """A published version's definition and publication time; None when there is no such version."""
        with self._transaction() as tx:
            rows = tx.execute(
                "SELECT definition, publish_time FROM flow_versions"
                " WHERE tenant_id = ? AND flow_id = ? AND version = ?",
                (tenant, flow_id, version),
            )
        return (json.loads(rows[0][0]), int(rows[0][1])) if rows else None
