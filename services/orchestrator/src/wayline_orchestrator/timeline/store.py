"""The outbox of the timeline's contact events in SQL (both engines), in the orchestrator's one database:
rows are added in the transaction that records the contact or the suppression (so the timeline loses
nothing the ledger or a flow recorded), claimed in batches with a lease by the shipper (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so replicas claim disjoint batches; SQLite's single writer), deleted once ingest
acknowledged them, and postponed with a backoff while ingest or identity is down. A merge gives the absorbed
person's waiting events to the survivor; erasure deletes them (ADR 38)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import LedgerUnavailable
from wayline_orchestrator.timeline.events import ContactEvent

__all__ = ["MIGRATIONS", "Claimed", "ContactEventStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE contact_events (tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " person_id TEXT NOT NULL, next_time BIGINT NOT NULL, lease_until BIGINT NOT NULL,"
        " attempts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, event_id))",
        # The shipper's claims read the due rows; erasures and merges a person's.
        "CREATE INDEX contact_events_due ON contact_events (next_time, lease_until)",
        "CREATE INDEX contact_events_by_person ON contact_events (tenant_id, person_id)",
    ),
)
_IN_CHUNK = 500  # ids per IN list


@dataclass(frozen=True)
class Claimed:
    tenant: str
    event: ContactEvent
    attempts: int  # shipping attempts that failed before this claim


class ContactEventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def migrate(self) -> int:
        with unavailable_as(LedgerUnavailable):
            return migrate(self._db, "orchestrator_contact_events", MIGRATIONS)

    def add(self, tx: Transaction, tenant: str, event: ContactEvent) -> None:
        """Keep `event` to ship, due at once; an event of the same id already waiting stays as it is."""
        tx.execute(
            "INSERT INTO contact_events"
            " (tenant_id, event_id, person_id, next_time, lease_until, attempts, body)"
            " VALUES (?, ?, ?, 0, 0, 0, ?) ON CONFLICT (tenant_id, event_id) DO NOTHING",
            (tenant, event.event_id, event.person_id, event.body()),
        )

    def claim(self, now: int, limit: int, lease_us: int) -> list[Claimed]:
        """Claim up to `limit` events due at `now` whose lease has passed, for `lease_us`; oldest first."""
        skip = " FOR UPDATE SKIP LOCKED" if self._db.engine == "postgresql" else ""
        with guarded_transaction(self._db, LedgerUnavailable) as tx:
            rows = tx.execute(
                "UPDATE contact_events SET lease_until = ? WHERE (tenant_id, event_id) IN"  # noqa: S608 - a fixed clause
                " (SELECT tenant_id, event_id FROM contact_events WHERE next_time <= ? AND lease_until <= ?"
                f" ORDER BY next_time LIMIT ?{skip})"
                " RETURNING tenant_id, event_id, person_id, attempts, body",
                (now + lease_us, now, now, limit),
            )
        claimed = [Claimed(t, ContactEvent.of(e, p, body), int(n)) for t, e, p, n, body in rows]
        return sorted(claimed, key=lambda c: (c.tenant, c.event.time_us, c.event.event_id))

    def delete(self, tenant: str, event_ids: Sequence[str]) -> int:
        """Forget shipped (or dropped) events; how many there were."""
        deleted = 0
        with guarded_transaction(self._db, LedgerUnavailable) as tx:
            for start in range(0, len(event_ids), _IN_CHUNK):
                chunk = list(event_ids[start : start + _IN_CHUNK])
                deleted += len(
                    tx.execute(
                        "DELETE FROM contact_events WHERE tenant_id = ?"  # noqa: S608 - placeholders only
                        f" AND event_id IN ({', '.join('?' * len(chunk))}) RETURNING event_id",
                        [tenant, *chunk],
                    )
                )
        return deleted

    def postpone(self, tenant: str, claimed: Sequence[Claimed], next_time: int) -> None:
        """Release claimed events to be shipped again at `next_time`, one more failed attempt counted."""
        with guarded_transaction(self._db, LedgerUnavailable) as tx:
            tx.executemany(
                "UPDATE contact_events SET next_time = ?, lease_until = 0, attempts = ?"
                " WHERE tenant_id = ? AND event_id = ?",
                [(next_time, c.attempts + 1, tenant, c.event.event_id) for c in claimed],
            )

    def waiting(self, tenant: str) -> list[ContactEvent]:
        """The tenant's events not shipped yet (for operators and tests), oldest first."""
        with guarded_transaction(self._db, LedgerUnavailable) as tx:
            rows = tx.execute(
                "SELECT event_id, person_id, body FROM contact_events WHERE tenant_id = ?", (tenant,)
            )
        events = [ContactEvent.of(e, p, body) for e, p, body in rows]
        return sorted(events, key=lambda e: (e.time_us, e.event_id))

    def move_person(self, tx: Transaction, tenant: str, person_id: str, survivor: str) -> int:
        """Give the person's waiting events to `survivor` (identity resolves them to the survivor anyway; the
        row's person is whose identifier is looked up). How many moved."""
        rows = tx.execute(
            "UPDATE contact_events SET person_id = ? WHERE tenant_id = ? AND person_id = ?"
            " RETURNING event_id",
            (survivor, tenant, person_id),
        )
        return len(rows)

    def forget_person(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """Delete the person's waiting events (erasure); how many there were."""
        rows = tx.execute(
            "DELETE FROM contact_events WHERE tenant_id = ? AND person_id = ? RETURNING event_id",
            (tenant, person_id),
        )
        return len(rows)
