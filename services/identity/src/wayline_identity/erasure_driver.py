"""The driver that completes pending erasures (erasure.py holds their records): it calls each store identity
erases directly until the store confirms, marks feed consumers done once their cursor passed the erasure's
markers, and closes the record when every step is done.

It hands each store a tenant's pending erasures together, in one eraser call per pass: a delete on journeys'
live store costs seconds whatever it deletes, so a backlog drains at that cost per pass instead of per person
(docs/adr/0096-erasures-in-batches.md). A store confirms a batch all or none; a refused batch is tried again
erasure by erasure in the same pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from wayline.common.sql import DATABASE_DOWN, Database, Transaction
from wayline_identity.erasure import DONE, PENDING, Eraser, ErasureWork
from wayline_identity.metrics import IdentityMetrics

__all__ = ["ErasureDriver"]

log = structlog.get_logger("wayline.identity.erasure")


class ErasureDriver:
    """Completes pending erasures: calls each direct store's eraser until it succeeds (once per pass for
    all of a tenant's erasures waiting on that store), marks feed consumers done once their cursor passed the
    erasure's markers, and closes the record when every step is done."""

    def __init__(
        self,
        db: Database,
        erasers: Mapping[str, Eraser],
        *,
        interval: float = 5.0,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
        metrics: IdentityMetrics | None = None,
    ) -> None:
        """`metrics` counts the attempts at each step and publishes the backlog (`backlog`)."""
        self._db = db
        self._erasers = dict(erasers)
        self._interval = interval
        self._clock = clock
        self._metrics = metrics
        self._pending = 0
        self._oldest: int | None = None  # the oldest pending erasure's create time, as the last pass read it
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if metrics is not None:
            metrics.erasure_stores(self._erasers)
            metrics.observe_erasures(self.backlog)

    def backlog(self) -> tuple[int, float]:
        """The erasures pending when the last pass ended, and how many seconds ago the oldest of them was
        requested (0 when none is; it keeps growing while passes fail)."""
        if self._oldest is None:
            return self._pending, 0.0
        return self._pending, max(0.0, (self._clock() - self._oldest) / 1_000_000)

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
        """One pass over the oldest pending erasures, tenant by tenant (a store call carries one tenant);
        how many completed."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                "SELECT tenant, erasure_id, person_ids, identifiers, marker_version FROM erasures"
                " WHERE complete_time IS NULL ORDER BY create_time LIMIT 100"
            )
        tenants: dict[str, list[_Pending]] = {}
        for tenant, erasure_id, person_ids, identifiers, marker_version in rows:
            work = ErasureWork(
                tuple(json.loads(person_ids)), tuple((str(k), str(v)) for k, v in json.loads(identifiers))
            )
            tenants.setdefault(tenant, []).append(_Pending(erasure_id, work, int(marker_version)))
        completed = sum(self._advance(tenant, erasures) for tenant, erasures in tenants.items())
        with self._db.transaction() as tx:
            (count, oldest), *_ = tx.execute(
                "SELECT COUNT(*), MIN(create_time) FROM erasures WHERE complete_time IS NULL"
            )
        self._pending, self._oldest = int(count), None if oldest is None else int(oldest)
        return completed

    def _advance(self, tenant: str, erasures: list[_Pending]) -> int:
        """Move one tenant's erasures on, store by store, then close those whose steps are all done."""
        with self._db.transaction() as tx:
            pending = _pending_steps(tx, tenant, [e.erasure_id for e in erasures])
            cursors = dict(
                tx.execute("SELECT consumer, version FROM override_cursors WHERE tenant = ?", (tenant,))
            )
        for store in sorted({store for _, store in pending}):
            waiting = [e for e in erasures if (e.erasure_id, store) in pending]  # oldest first
            eraser = self._erasers.get(store)
            if eraser is None:  # a feed consumer: done once its cursor passed the markers
                cursor = int(cursors.get(store, 0))
                caught_up = [(e.erasure_id, 0) for e in waiting if cursor >= e.marker]
                self._record(tenant, store, caught_up, state=DONE, error="")
            else:
                self._erase(tenant, store, eraser, waiting)
        return self._close(tenant, [e.erasure_id for e in erasures])

    def _erase(self, tenant: str, store: str, eraser: Eraser, erasures: list[_Pending]) -> None:
        """One eraser call for every erasure waiting on `store`: all done with their counts. When the store
        refuses the batch, each erasure is tried alone in the same pass, so that one it keeps refusing
        holds up only itself (while the store is down: a failing call per erasure, as before batches)."""
        if len(erasures) > 1 and self._erase_batch(tenant, store, eraser, erasures, record_failure=False):
            return
        for erasure in erasures:
            self._erase_batch(tenant, store, eraser, [erasure], record_failure=True)

    def _erase_batch(
        self, tenant: str, store: str, eraser: Eraser, erasures: list[_Pending], *, record_failure: bool
    ) -> bool:
        """Call `eraser` for `erasures`; on success record each step done with its count. True on success."""
        ids = [e.erasure_id for e in erasures]
        try:
            counts = list(eraser(tenant, [e.work for e in erasures]))
            if len(counts) != len(erasures):
                raise ValueError(f"{store} answered {len(counts)} counts for {len(erasures)} erasures")
        except Exception as exc:  # noqa: BLE001 - whatever a store raises, the steps are retried
            log.warning(
                "identity.erasure_step_failed", tenant=tenant, store=store, erasure_ids=ids, error=str(exc)
            )
            if record_failure:
                self._record(tenant, store, [(i, 0) for i in ids], state=PENDING, error=str(exc)[:500])
                self._count(store, "failed", len(ids))
            return False
        self._record(tenant, store, list(zip(ids, counts, strict=True)), state=DONE, error="")
        self._count(store, "done", len(ids))
        return True

    def _count(self, store: str, outcome: str, steps: int) -> None:
        if self._metrics is not None:
            self._metrics.erasure_steps(store, outcome, steps)

    def _record(
        self, tenant: str, store: str, outcomes: Sequence[tuple[str, int]], *, state: str, error: str
    ) -> None:
        """Record an attempt at `store`'s step of each erasure in `outcomes` (erasure id, records deleted)."""
        if not outcomes:
            return
        now = self._clock()
        with self._db.transaction() as tx:
            tx.executemany(
                "UPDATE erasure_steps SET state = ?, deleted_count = deleted_count + ?,"
                " attempt_count = attempt_count + 1, last_error = ?, update_time = ?"
                " WHERE tenant = ? AND erasure_id = ? AND store = ?",
                [(state, deleted, error, now, tenant, erasure_id, store) for erasure_id, deleted in outcomes],
            )

    def _close(self, tenant: str, erasure_ids: Sequence[str]) -> int:
        """Complete the erasures among `erasure_ids` that no step waits on any more; how many."""
        with self._db.transaction() as tx:
            waiting = {erasure_id for erasure_id, _ in _pending_steps(tx, tenant, erasure_ids)}
            done = [i for i in erasure_ids if i not in waiting]
            if done:
                now = self._clock()
                tx.executemany(
                    "UPDATE erasures SET complete_time = ?, identifiers = '[]' WHERE tenant = ? AND"
                    " erasure_id = ?",
                    [(now, tenant, erasure_id) for erasure_id in done],
                )
        for erasure_id in done:
            log.info("identity.erasure_complete", tenant=tenant, erasure_id=erasure_id)
        return len(done)


@dataclass(frozen=True)
class _Pending:
    """A pending erasure as the driver reads it: what its stores must erase, and the feed version past
    which its feed consumers have forgotten the person."""

    erasure_id: str
    work: ErasureWork
    marker: int


def _pending_steps(tx: Transaction, tenant: str, erasure_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(erasure id, store) of each pending step of the erasures (at most the 100 of one pass)."""
    if not erasure_ids:
        return set()
    marks = ", ".join("?" for _ in erasure_ids)
    rows = tx.execute(
        "SELECT erasure_id, store FROM erasure_steps WHERE tenant = ? AND state = ?"  # noqa: S608 - only placeholders are interpolated
        f" AND erasure_id IN ({marks})",
        (tenant, PENDING, *erasure_ids),
    )
    return {(str(erasure_id), str(store)) for erasure_id, store in rows}
