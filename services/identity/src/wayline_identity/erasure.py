"""Erasure that reaches every store: the record DeleteProfile writes, and the driver that completes it.

DeleteProfile erases the person in identity and, in the same transaction, records an erasure with one step per
store. Stores that identity calls directly (journeys' events, ingest's dead letters) are driven by
`ErasureDriver`, which retries each pending step until the store confirms; stores that follow the override
feed (decision, orchestrator) confirm by moving their feed cursor past the erasure's `erased` markers
(AcknowledgePersonOverrides). The record holds person ids (random) and no identifier once complete: the
identifiers the stores need to find dead letters are kept only while the erasure runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from wayline.common.errors import NotFound
from wayline.common.sql import DATABASE_DOWN, Database, Transaction
from wayline.common.timestamps import from_micros
from wayline_identity.model import Key
from wayline_identity.store.reads import max_override_version

__all__ = [
    "Eraser",
    "Erasure",
    "ErasureDriver",
    "ErasureStep",
    "acknowledge",
    "read_erasure",
    "record_erasure",
]

log = structlog.get_logger("wayline.identity.erasure")

# Erases a person in one store: (tenant, person ids, identifiers) → how many records it deleted. Raises when
# the store could not confirm (the driver retries).
Eraser = Callable[[str, Sequence[str], Sequence[Key]], int]
PENDING, DONE = "pending", "done"


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


class ErasureDriver:
    """Completes pending erasures: calls each direct store's eraser until it succeeds, marks feed consumers
    done once their cursor passed the erasure's markers, and closes the record when every step is done."""

    def __init__(
        self,
        db: Database,
        erasers: Mapping[str, Eraser],
        *,
        interval: float = 5.0,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self._db = db
        self._erasers = dict(erasers)
        self._interval = interval
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="identity-erasures", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except DATABASE_DOWN as exc:
                log.warning("identity.erasure_pass_failed", error=str(exc))
            except Exception:  # keep erasing: one bad pass must not stop the driver
                log.exception("identity.erasure_pass_crashed")
            self._wake.wait(self._interval)
            self._wake.clear()

    def run_once(self) -> int:
        """One pass over pending erasures; how many completed."""
        with self._db.transaction() as tx:
            pending = tx.execute(
                "SELECT tenant, erasure_id, person_ids, identifiers, marker_version FROM erasures"
                " WHERE complete_time IS NULL ORDER BY create_time LIMIT 100"
            )
        completed = 0
        for tenant, erasure_id, person_ids, identifiers, marker_version in pending:
            persons = json.loads(person_ids)
            keys = [(str(k), str(v)) for k, v in json.loads(identifiers)]
            completed += self._advance(tenant, erasure_id, persons, keys, int(marker_version))
        return completed

    def _advance(self, tenant: str, erasure_id: str, persons: list[str], keys: list[Key], marker: int) -> int:
        with self._db.transaction() as tx:
            steps = tx.execute(
                "SELECT store FROM erasure_steps WHERE tenant = ? AND erasure_id = ? AND state = ?",
                (tenant, erasure_id, PENDING),
            )
            cursors = dict(
                tx.execute("SELECT consumer, version FROM override_cursors WHERE tenant = ?", (tenant,))
            )
        for (store,) in steps:
            eraser = self._erasers.get(store)
            if eraser is None:  # a feed consumer: done once its cursor passed the markers
                if int(cursors.get(store, 0)) >= marker:
                    self._step(tenant, erasure_id, store, state=DONE, deleted=0, error="")
                continue
            try:
                deleted = eraser(tenant, persons, keys)
            except Exception as exc:  # noqa: BLE001 - whatever a store raises, the step is retried next pass
                log.warning(
                    "identity.erasure_step_failed", store=store, erasure_id=erasure_id, error=str(exc)
                )
                self._step(tenant, erasure_id, store, state=PENDING, deleted=0, error=str(exc)[:500])
            else:
                self._step(tenant, erasure_id, store, state=DONE, deleted=deleted, error="")
        with self._db.transaction() as tx:
            left = tx.execute(
                "SELECT COUNT(*) FROM erasure_steps WHERE tenant = ? AND erasure_id = ? AND state = ?",
                (tenant, erasure_id, PENDING),
            )
            if int(left[0][0]):
                return 0
            tx.execute(
                "UPDATE erasures SET complete_time = ?, identifiers = '[]' WHERE tenant = ? AND erasure_id"
                " = ?",
                (self._clock(), tenant, erasure_id),
            )
        log.info("identity.erasure_complete", tenant=tenant, erasure_id=erasure_id)
        return 1

    def _step(
        self, tenant: str, erasure_id: str, store: str, *, state: str, deleted: int, error: str
    ) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE erasure_steps SET state = ?, deleted_count = deleted_count + ?,"
                " attempt_count = attempt_count + 1, last_error = ?, update_time = ?"
                " WHERE tenant = ? AND erasure_id = ? AND store = ?",
                (state, deleted, error, self._clock(), tenant, erasure_id, store),
            )
