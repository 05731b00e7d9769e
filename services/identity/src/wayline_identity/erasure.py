"""Erasure that reaches every store: the record DeleteProfile writes (the driver that completes it is
erasure_driver.py).

DeleteProfile erases the person in identity and, in the same transaction, records an erasure with one step per
store. Stores that identity calls directly (journeys' events, ingest's dead letters) are driven by
`ErasureDriver`, which retries each pending step until the store confirms; stores that follow the override
feed (decision, orchestrator) confirm by moving their feed cursor past the erasure's `erased` markers
(AcknowledgePersonOverrides). The record holds person ids (random) and no identifier once complete: the
identifiers the stores need to find dead letters are kept only while the erasure runs.

The driver hands each store a tenant's pending erasures together (docs/adr/0096-erasures-in-batches.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from wayline.common.errors import NotFound
from wayline.common.sql import Transaction
from wayline.common.timestamps import from_micros
from wayline_identity.model import Key
from wayline_identity.store.reads import max_override_version

__all__ = [
    "Eraser",
    "Erasure",
    "ErasureStep",
    "ErasureWork",
    "acknowledge",
    "read_erasure",
    "record_erasure",
]

PENDING, DONE = "pending", "done"


@dataclass(frozen=True)
class ErasureWork:
    """What one erasure asks of a store: its persons, and the identifiers to erase with them (records that
    carry them but read as someone else, such as a login on a device unmerged from the person)."""

    person_ids: tuple[str, ...]
    identifiers: tuple[Key, ...]


# Erases several erasures of one tenant in one store: (tenant, each erasure's work) → how many records it
# deleted for each, in the same order. Raises when the store could not confirm all of them: the driver then
# retries every one (erasing again is harmless, it finds nothing more).
Eraser = Callable[[str, Sequence[ErasureWork]], Sequence[int]]


class ErasureNotFound(NotFound):
    default_reason = "ERASURE_NOT_FOUND"


@dataclass(frozen=True)
class ErasureStep:
    store: str
    state: str
    deleted_count: int
    attempt_count: int
    last_error: str
    update_time: datetime


@dataclass(frozen=True)
class Erasure:
    erasure_id: str
    person_ids: list[str]
    steps: list[ErasureStep]
    actor: str
    create_time: datetime
    complete_time: datetime | None = None
    state: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", DONE if all(s.state == DONE for s in self.steps) else PENDING)


def record_erasure(
    tx: Transaction,
    tenant: str,
    *,
    person_ids: Sequence[str],
    identifiers: Sequence[Key],
    identity_count: int,
    marker_version: int,
    stores: Sequence[str],
    actor: str,
    now: int,
) -> str:
    """Write the erasure of `person_ids` (identity's own step done: `identity_count` identifiers)."""
    erasure_id = uuid.uuid4().hex
    tx.execute(
        "INSERT INTO erasures (tenant, erasure_id, person_ids, identifiers, marker_version, actor,"
        " create_time,"
        " complete_time) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        (
            tenant,
            erasure_id,
            json.dumps(list(person_ids)),
            json.dumps([list(k) for k in identifiers]),
            marker_version,
            actor,
            now,
        ),
    )
    steps = [("identity", DONE, identity_count), *((store, PENDING, 0) for store in stores)]
    tx.executemany(
        "INSERT INTO erasure_steps (tenant, erasure_id, store, state, deleted_count, attempt_count,"
        " last_error,"
        " update_time) VALUES (?, ?, ?, ?, ?, 0, '', ?)",
        [(tenant, erasure_id, store, state, count, now) for store, state, count in steps],
    )
    if not stores:
        tx.execute(
            "UPDATE erasures SET complete_time = ?, identifiers = '[]' WHERE tenant = ? AND erasure_id = ?",
            (now, tenant, erasure_id),
        )
    return erasure_id


def read_erasure(tx: Transaction, tenant: str, erasure_id: str) -> Erasure:
    rows = tx.execute(
        "SELECT person_ids, actor, create_time, complete_time FROM erasures WHERE tenant = ? AND"
        " erasure_id = ?",
        (tenant, erasure_id),
    )
    if not rows:
        raise ErasureNotFound(f"erasure {erasure_id!r} does not exist")
    person_ids, actor, create_time, complete_time = rows[0]
    steps = [
        ErasureStep(store, state, int(count), int(attempts), error, from_micros(at))
        for store, state, count, attempts, error, at in tx.execute(
            "SELECT store, state, deleted_count, attempt_count, last_error, update_time FROM erasure_steps"
            " WHERE tenant = ? AND erasure_id = ? ORDER BY store",
            (tenant, erasure_id),
        )
    ]
    return Erasure(
        erasure_id,
        json.loads(person_ids),
        steps,
        actor,
        from_micros(create_time),
        from_micros(complete_time) if complete_time is not None else None,
    )


def acknowledge(tx: Transaction, tenant: str, consumer: str, version: int, now: int) -> int:
    """Move `consumer`'s feed cursor forward (never back); the feed's head."""
    tx.execute(
        "INSERT INTO override_cursors (tenant, consumer, version, update_time) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (tenant, consumer) DO UPDATE SET version = excluded.version,"
        " update_time = excluded.update_time WHERE override_cursors.version < excluded.version",
        (tenant, consumer, version, now),
    )
    return max_override_version(tx, tenant)
