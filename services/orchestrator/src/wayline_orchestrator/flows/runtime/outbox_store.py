"""The outbox's dispatch state in SQL (both engines): PENDING messages are claimed in batches with a lease,
as timers are (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas claim disjoint batches; SQLite's single
writer), and settled by key: DELIVERED with its time, PENDING again with the next attempt's time, DEAD or
UNROUTED with the reason. A settlement only applies to a row still PENDING, so a late replica whose lease
passed cannot undo what another recorded. A redrive (`requeue`, ADR 41) makes DEAD rows PENDING again, due at
once, with their attempts reset, in the transaction that removes their dead letters. A merge gives a person's
messages to the survivor (their keys stay: a message attempted before the merge is not sent under a new
key); erasure deletes them (ADR 38)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from wayline.common.sql import Database, Transaction
from wayline_orchestrator.flows.runtime.model import Message

__all__ = ["Claimed", "OutboxState", "OutboxStore"]


class OutboxState:
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"
    UNROUTED = "UNROUTED"


@dataclass(frozen=True)
class Claimed:
    tenant: str
    message: Message
    attempts: int  # attempts made before this claim


@dataclass(frozen=True)
class Settled:
    state: str
    attempts: int
    next_time: int
    settle_time: int
    reason: str


_IN_CHUNK = 500  # keys per IN list


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def requeue(self, tx: Transaction, tenant: str, keys: Sequence[str]) -> list[str]:
        """Make the DEAD messages of these keys PENDING again, due now (next time 0), no lease, no attempt
        counted; the keys that were DEAD. Others (delivered meanwhile, or gone with an erased person) stay."""
        requeued: list[str] = []
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = list(keys[start : start + _IN_CHUNK])
            rows = tx.execute(
                "UPDATE flow_outbox SET state = 'PENDING', attempts = 0, next_time = 0, lease_until = 0,"
                " settle_time = 0, reason = '' WHERE tenant_id = ? AND state = 'DEAD'"
                f" AND idempotency_key IN ({', '.join('?' * len(chunk))}) RETURNING idempotency_key",
                [tenant, *chunk],
            )
            requeued += [key for (key,) in rows]
        return requeued

    def claim(self, now: int, limit: int, lease_us: int) -> list[Claimed]:
        """Claim up to `limit` PENDING messages due at `now` whose lease has passed, for `lease_us`."""
        skip = " FOR UPDATE SKIP LOCKED" if self._db.engine == "postgresql" else ""
        with self._db.transaction() as tx:
            rows = tx.execute(
                "UPDATE flow_outbox SET lease_until = ? WHERE (tenant_id, idempotency_key) IN"
                " (SELECT tenant_id, idempotency_key FROM flow_outbox WHERE state = 'PENDING'"
                f" AND next_time <= ? AND lease_until <= ? ORDER BY next_time, create_time LIMIT ?{skip})"
                " RETURNING tenant_id, body, attempts",
                (now + lease_us, now, now, limit),
            )
        claimed = [Claimed(t, Message(**json.loads(body)), int(n)) for t, body, n in rows]
        return sorted(claimed, key=lambda c: (c.message.create_time, c.message.idempotency_key))

    def settle(
        self,
        tenant: str,
        key: str,
        state: str,
        attempts: int,
        *,
        next_time: int = 0,
        at: int = 0,
        reason: str = "",
    ) -> bool:
        """Record a claim's outcome; False when the row was no longer PENDING."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                "UPDATE flow_outbox SET state = ?, attempts = ?, next_time = ?, lease_until = 0,"
                " settle_time = ?, reason = ? WHERE tenant_id = ? AND idempotency_key = ?"
                " AND state = 'PENDING' RETURNING idempotency_key",
                (state, attempts, next_time, at, reason, tenant, key),
            )
        return bool(rows)

    def settled(self, tenant: str, key: str) -> Settled | None:
        with self._db.transaction() as tx:
            rows = tx.execute(
                "SELECT state, attempts, next_time, settle_time, reason FROM flow_outbox"
                " WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant, key),
            )
        if not rows:
            return None
        state, attempts, next_time, at, reason = rows[0]
        return Settled(state, int(attempts), int(next_time), int(at), reason)

    def move_person(
        self, tx: Transaction, tenant: str, person_id: str, survivor: str, numbers: dict[tuple[str, int], int]
    ) -> int:
        """Give the person's messages, whatever their state, to `survivor`, with their entries' new numbers
        (`numbers`: (flow, old number) → new); the idempotency keys stay. How many moved."""
        rows = tx.execute(
            "SELECT idempotency_key, body FROM flow_outbox WHERE tenant_id = ? AND person_id = ?",
            (tenant, person_id),
        )
        updates = []
        for key, body in rows:
            message = Message(**json.loads(body))
            number = numbers.get((message.flow_id, message.entry_number), message.entry_number)
            moved = replace(message, person_id=survivor, entry_number=number)
            updates.append((survivor, json.dumps(asdict(moved), sort_keys=True), tenant, key))
        tx.executemany(
            "UPDATE flow_outbox SET person_id = ?, body = ? WHERE tenant_id = ? AND idempotency_key = ?",
            updates,
        )
        return len(updates)

    def forget_person(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """Delete the person's messages, sent or not (erasure); how many there were."""
        rows = tx.execute(
            "DELETE FROM flow_outbox WHERE tenant_id = ? AND person_id = ? RETURNING idempotency_key",
            (tenant, person_id),
        )
        return len(rows)
