"""The merges the orchestrator has applied, person → survivor, so that an event resolved to an absorbed
person before identity merged it, and observed after the merge was applied (in flight in ingest), still
reaches the survivor's entries and ledger (ADR 38). Kept flat, as identity keeps its overrides: a merge of
the survivor later re-points every row that pointed to it. A cancelled override (an unmerge or a split that
restored the person) or an erasure removes the person's rows. Every query is keyed by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable

__all__ = ["MIGRATIONS", "MergedPersons"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE merged_persons (tenant_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " survivor_id TEXT NOT NULL, PRIMARY KEY (tenant_id, person_id))",
        "CREATE INDEX merged_persons_by_survivor ON merged_persons (tenant_id, survivor_id)",
    ),
)
_IN_CHUNK = 500


class MergedPersons:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with unavailable_as(FlowStoreUnavailable):
            return migrate(self._db, "orchestrator_merged_persons", MIGRATIONS)

    def record(self, tx: Transaction, tenant: str, person_id: str, survivor: str) -> None:
        """`person_id` is `survivor` from now on, and so is every person that was `person_id`."""
        tx.execute(
            "UPDATE merged_persons SET survivor_id = ? WHERE tenant_id = ? AND survivor_id = ?",
            (survivor, tenant, person_id),
        )
        tx.execute(
            "INSERT INTO merged_persons (tenant_id, person_id, survivor_id) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant_id, person_id) DO UPDATE SET survivor_id = excluded.survivor_id",
            (tenant, person_id, survivor),
        )

    def restore(self, tx: Transaction, tenant: str, person_id: str) -> None:
        """`person_id` is a person of its own again (a cancelled override)."""
        tx.execute("DELETE FROM merged_persons WHERE tenant_id = ? AND person_id = ?", (tenant, person_id))

    def forget(self, tx: Transaction, tenant: str, person_id: str) -> None:
        """Erasure: no row names the person any more, either way."""
        tx.execute(
            "DELETE FROM merged_persons WHERE tenant_id = ? AND (person_id = ? OR survivor_id = ?)",
            (tenant, person_id, person_id),
        )

    def survivors(self, tenant: str, person_ids: Sequence[str]) -> dict[str, str]:
        """The survivor of each of these persons that was merged; the others are absent."""
        found: dict[str, str] = {}
        if not person_ids:
            return found
        with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
            for start in range(0, len(person_ids), _IN_CHUNK):
                chunk = person_ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = tx.execute(
                    f"SELECT person_id, survivor_id FROM merged_persons WHERE tenant_id = ? AND person_id IN ({marks})",  # noqa: S608, E501 - placeholders only
                    (tenant, *chunk),
                )
                found.update((str(person), str(survivor)) for person, survivor in rows)
        return found
