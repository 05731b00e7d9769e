"""What became of the persons whose overrides the orchestrator applied: merged into a survivor (person →
survivor) or erased (person → ""), so that an event resolved to the person before identity merged or erased
them, and observed after the orchestrator applied it (in flight in ingest), reaches the survivor's entries
and ledger, or nothing (ADR 38, ADR 94). Kept flat, as identity keeps its overrides: a merge of the survivor
later re-points every row that pointed to it. A cancelled override (an unmerge or a split that restored the
person) removes the person's row. An erased person's row stays: their id is never given again. Every query
is keyed by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable

__all__ = ["ERASED", "MIGRATIONS", "MergedPersons"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE merged_persons (tenant_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " survivor_id TEXT NOT NULL, PRIMARY KEY (tenant_id, person_id))",
        "CREATE INDEX merged_persons_by_survivor ON merged_persons (tenant_id, survivor_id)",
    ),
)
_IN_CHUNK = 500
ERASED = ""  # the survivor of an erased person: nobody


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

    def erase(self, tx: Transaction, tenant: str, person_id: str) -> None:
        """Erasure: no row names the person as a survivor any more (identity erases those persons too), and
        the person's own row says erased."""
        tx.execute("DELETE FROM merged_persons WHERE tenant_id = ? AND survivor_id = ?", (tenant, person_id))
        tx.execute(
            "INSERT INTO merged_persons (tenant_id, person_id, survivor_id) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant_id, person_id) DO UPDATE SET survivor_id = excluded.survivor_id",
            (tenant, person_id, ERASED),
        )

    def survivors(self, tenant: str, person_ids: Sequence[str]) -> dict[str, str]:
        """The survivor of each of these persons that was merged, ERASED for one erased; the others are
        absent."""
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
