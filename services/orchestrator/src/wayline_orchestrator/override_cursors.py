"""Where the orchestrator is in identity's override feed: one cursor per tenant, in the orchestrator's
database, written in the transaction that applies each override (ADR 38), so that a crash replays at most
what was not committed, and a replayed override at or below the cursor is skipped. On PostgreSQL the
cursor's row is locked for the transaction, so two replicas applying the same page apply each override once.

`tenants` names the tenants to follow: those the orchestrator keeps anything for (person state, a policy, a
flow, a cursor). `remember` gives a cursor to every tenant whose events it observes, so that an erasure
completes even in a tenant where the orchestrator keeps nothing of the person. Each table is read by a
loose index scan (a recursive query that jumps from one tenant to the next through the primary key's
leading column), so the listing costs one index probe per tenant, not a scan of the rows.
"""

from __future__ import annotations

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable

__all__ = ["MIGRATIONS", "OverrideCursors"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE person_override_cursors (tenant_id TEXT NOT NULL PRIMARY KEY, version BIGINT NOT NULL,"
        " update_time BIGINT NOT NULL)",
    ),
)
# Every table whose primary key begins with tenant_id and whose rows make a tenant worth following.
_TENANT_TABLES = (
    "person_override_cursors",
    "flow_entries",
    "flow_outbox",
    "contacts",
    "person_consents",
    "person_attributes",
    "contact_policies",
    "flows",
    "connector_dead_letters",
)
_DISTINCT_TENANTS = (
    "WITH RECURSIVE seen (tenant_id) AS (SELECT MIN(tenant_id) FROM {table}"
    " UNION ALL SELECT (SELECT MIN(tenant_id) FROM {table} WHERE tenant_id > seen.tenant_id)"
    " FROM seen WHERE seen.tenant_id IS NOT NULL) SELECT tenant_id FROM seen WHERE tenant_id IS NOT NULL"
)


class OverrideCursors:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: set[str] = set()  # tenants with a cursor row, as far as this process knows

    def remember(self, tenant: str) -> None:
        """Follow `tenant` from now on (a cursor at 0 unless it has one): written once per process."""
        if tenant in self._known:
            return
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            tx.execute(
                "INSERT INTO person_override_cursors (tenant_id, version, update_time) VALUES (?, 0, 0)"
                " ON CONFLICT (tenant_id) DO NOTHING",
                (tenant,),
            )
        self._known.add(tenant)

    def migrate(self) -> int:
        with unavailable_as(FlowStoreUnavailable):
            return migrate(self._db, "orchestrator_override_cursors", MIGRATIONS)

    def cursor(self, tenant: str) -> int:
        """The highest override version applied for the tenant; 0 before the first."""
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            rows = tx.execute("SELECT version FROM person_override_cursors WHERE tenant_id = ?", (tenant,))
        return int(rows[0][0]) if rows else 0

    def lock(self, tx: Transaction, tenant: str, now: int) -> int:
        """The tenant's cursor, its row locked until the transaction ends (created at 0 when missing)."""
        tx.execute(
            "INSERT INTO person_override_cursors (tenant_id, version, update_time) VALUES (?, 0, ?)"
            " ON CONFLICT (tenant_id) DO NOTHING",
            (tenant, now),
        )
        lock = " FOR UPDATE" if self._db.engine == "postgresql" else ""
        rows = tx.execute(
            f"SELECT version FROM person_override_cursors WHERE tenant_id = ?{lock}",  # noqa: S608 - a fixed clause
            (tenant,),
        )
        return int(rows[0][0])

    def advance(self, tx: Transaction, tenant: str, version: int, now: int) -> None:
        """Move the cursor (locked by `lock` in this transaction) to `version`; never back."""
        tx.execute(
            "UPDATE person_override_cursors SET version = ?, update_time = ?"
            " WHERE tenant_id = ? AND version < ?",
            (version, now, tenant, version),
        )

    def tenants(self) -> list[str]:
        """Every tenant the orchestrator keeps anything for, by name."""
        found: set[str] = set()
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            for table in _TENANT_TABLES:
                found.update(str(row[0]) for row in tx.execute(_DISTINCT_TENANTS.format(table=table)))
        return sorted(found)
