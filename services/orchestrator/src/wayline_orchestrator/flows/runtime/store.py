"""Flow execution state in SQL, the same statements on SQLite (embedded) and PostgreSQL (production), in the
orchestrator's one database: entries, timers, the outbox and the step runs. Every query but the timer claim
is scoped by tenant.

Work on one person's entries happens in one transaction that first locks them (`SELECT ... FOR UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the database's one write lock), so an event and a timer of the
same entry, on two replicas, run one after the other and the second sees what the first did.

Timers are claimed in batches with a lease: the claim sets `lease_until` on due timers whose lease has
passed (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas claim disjoint batches; the single writer on
SQLite), and the firing deletes the timer in the transaction that acts on the entry. A replica that dies
between the two leaves the timer to be claimed again when its lease ends; the firing is guarded by the
entry's state, so a second firing does nothing.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from wayline.common.sql import Database, Transaction, guarded_transaction, migrate, unavailable_as
from wayline_orchestrator.errors import FlowStoreUnavailable
from wayline_orchestrator.flows.runtime.model import (
    LIVE,
    Entry,
    EntryStatus,
    Message,
    StepRun,
    Timer,
    TimerKind,
)

__all__ = ["MIGRATIONS", "RuntimeStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE flow_entries (tenant_id TEXT NOT NULL, flow_id TEXT NOT NULL, person_id TEXT NOT NULL,"
        " entry_number BIGINT NOT NULL, version BIGINT NOT NULL, step_id TEXT NOT NULL,"
        " status TEXT NOT NULL, revision BIGINT NOT NULL, entered_time BIGINT NOT NULL,"
        " update_time BIGINT NOT NULL, trigger_event_id TEXT NOT NULL, body TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, flow_id, person_id, entry_number))",
        # An event delivered twice enters once.
        "CREATE UNIQUE INDEX flow_entries_by_trigger ON flow_entries (tenant_id, flow_id, trigger_event_id)",
        "CREATE INDEX flow_entries_by_person ON flow_entries (tenant_id, person_id, status)",
        "CREATE TABLE flow_timers (tenant_id TEXT NOT NULL, timer_key TEXT NOT NULL,"
        " due_time BIGINT NOT NULL, lease_until BIGINT NOT NULL, flow_id TEXT NOT NULL,"
        " person_id TEXT NOT NULL, entry_number BIGINT NOT NULL, kind TEXT NOT NULL, step_id TEXT NOT NULL,"
        " visit BIGINT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (tenant_id, timer_key))",
        "CREATE INDEX flow_timers_by_due ON flow_timers (due_time)",
        "CREATE INDEX flow_timers_by_entry ON flow_timers (tenant_id, flow_id, person_id, entry_number)",
        "CREATE TABLE flow_outbox (tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
        " flow_id TEXT NOT NULL, person_id TEXT NOT NULL, channel TEXT NOT NULL, create_time BIGINT NOT NULL,"
        " state TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, idempotency_key))",
        "CREATE INDEX flow_outbox_by_state ON flow_outbox (state, create_time)",
        "CREATE TABLE flow_step_runs (tenant_id TEXT NOT NULL, step_key TEXT NOT NULL, flow_id TEXT NOT NULL,"
        " person_id TEXT NOT NULL, step_id TEXT NOT NULL, outcome TEXT NOT NULL, run_time BIGINT NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (tenant_id, step_key))",
    ),
    (
        # Dispatch through connectors (ADR 35): the next attempt's time, the claim's lease, the attempts made,
        # and the outcome (the delivery time, or why the message is dead or unrouted).
        "ALTER TABLE flow_outbox ADD COLUMN next_time BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_outbox ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_outbox ADD COLUMN settle_time BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_outbox ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX flow_outbox_by_next ON flow_outbox (state, next_time)",
    ),
    (
        # Statistics (flows/stats.py) aggregate in SQL: a step run's entry and version, and its label (a
        # path's, a branch's or a variant's label, or an end's reason) and the step a PATH run leads to; an
        # entry's conversion time out of its body. Rows written before read as version 0 (not counted).
        "ALTER TABLE flow_step_runs ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_step_runs ADD COLUMN entry_number BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE flow_step_runs ADD COLUMN label TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE flow_step_runs ADD COLUMN next_step_id TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX flow_step_runs_by_flow ON flow_step_runs (tenant_id, flow_id, version, step_id)",
        "ALTER TABLE flow_entries ADD COLUMN converted_time BIGINT",
        "CREATE INDEX flow_entries_by_flow ON flow_entries (tenant_id, flow_id, version, entered_time)",
    ),
)
_ENTRY_COLUMNS = (
    "flow_id, person_id, entry_number, version, step_id, status, revision, entered_time, update_time,"
    " trigger_event_id, body"
)
_TIMER_COLUMNS = "timer_key, due_time, flow_id, person_id, entry_number, kind, step_id, visit, reason"
_IN_CHUNK = 500  # person ids per IN list
_ROWS = 64  # rows per multi-row INSERT: 12 columns stay under SQLite's oldest limit of 999 parameters
_BODY_FIELDS = ("reason", "trigger", "events", "visits", "converted_time", "key_base")


def _entry(row: tuple[Any, ...]) -> Entry:
    flow_id, person_id, number, version, step_id, status, revision, entered, updated, trigger_id, body = row
    return Entry(
        flow_id=flow_id,
        person_id=person_id,
        number=int(number),
        version=int(version),
        step_id=step_id,
        status=EntryStatus(status),
        revision=int(revision),
        entered_time=int(entered),
        update_time=int(updated),
        trigger_event_id=trigger_id,
        **json.loads(body),
    )


# A person's entries are read, and locked on PostgreSQL, in this order, one for every reader so that two
# transactions of the same person take their row locks in the same order. It starts with the status so that
# SQLite's planner searches the person's index (tenant, person, status): with `ORDER BY flow_id, ...` it
# walked every entry of the tenant in flow order instead, and each event then cost O(entries of the tenant).
# Callers get them by flow and number (`_by_flow_and_number`).
_PERSON_ORDER = "ORDER BY status, flow_id, entry_number"


def _by_flow_and_number(rows: Sequence[tuple[Any, ...]]) -> list[Entry]:
    return sorted((_entry(row) for row in rows), key=lambda entry: (entry.flow_id, entry.number))


def _entry_params(entry: Entry) -> tuple[Any, ...]:
    body = json.dumps({name: getattr(entry, name) for name in _BODY_FIELDS}, sort_keys=True)
    return (
        entry.flow_id,
        entry.person_id,
        entry.number,
        entry.version,
        entry.step_id,
        entry.status.value,
        entry.revision,
        entry.entered_time,
        entry.update_time,
        entry.trigger_event_id,
        body,
    )


def _timer(row: tuple[Any, ...]) -> tuple[str, Timer]:
    tenant, key, due, flow_id, person_id, number, kind, step_id, visit, reason = row
    timer = Timer(
        key, int(due), flow_id, person_id, int(number), TimerKind(kind), step_id, int(visit), reason
    )
    return tenant, timer


def _insert_rows(tx: Transaction, insert: str, values: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`insert` (`INSERT INTO table (columns)`) of `rows`, each bound to the placeholders `values`, as
    multi-row statements of at most `_ROWS` rows, with `ON CONFLICT DO NOTHING`: one round trip for a run's
    timers or step runs on PostgreSQL, where `executemany` costs one per row. Rows are inserted in order,
    so of two rows with one key the first is kept, as with one statement per row."""
    for start in range(0, len(rows), _ROWS):
        chunk = rows[start : start + _ROWS]
        placeholders = ", ".join([f"({values})"] * len(chunk))
        tx.execute(
            f"{insert} VALUES {placeholders} ON CONFLICT DO NOTHING", [p for row in chunk for p in row]
        )


class _Effects(threading.local):
    """This thread's open transaction's effects to run once it commits, and the latest savepoint's place."""

    pending: list[Callable[[], None]] | None = None
    mark = 0


class RuntimeStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._effects = _Effects()

    def migrate(self) -> int:
        with unavailable_as(FlowStoreUnavailable):
            return migrate(self._db, "orchestrator_flow_runtime", MIGRATIONS)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction; the effects registered in it with `after_commit` run once it has committed, none
        when it rolls back (a run that needs an answer is rolled back and done again, answers.py)."""
        pending: list[Callable[[], None]] = []
        outer, self._effects.pending = self._effects.pending, pending
        try:
            with guarded_transaction(self._db, FlowStoreUnavailable) as tx:
                yield tx
        finally:
            self._effects.pending = outer
        for effect in pending:
            effect()

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once this thread's open transaction commits (at once when none is open): what must
        not happen twice when a run is done again, such as counting a metric."""
        if self._effects.pending is None:
            effect()
        else:
            self._effects.pending.append(effect)

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        """A transaction that only reads, and waits for no writer (see the kit's `Database.snapshot`)."""
        with unavailable_as(FlowStoreUnavailable), self._db.snapshot() as tx:
            yield tx

    @property
    def engine(self) -> str:
        """The database's engine: "sqlite" or "postgresql"."""
        return self._db.engine

    def savepoint(self, tx: Transaction) -> None:
        """Mark where `rollback_to_savepoint` goes back to (the latest mark; earlier ones stay)."""
        tx.execute("SAVEPOINT person")
        self._effects.mark = len(self._effects.pending or ())

    def rollback_to_savepoint(self, tx: Transaction) -> None:
        """Undo what the transaction did since the latest `savepoint`, its effects to come included; it goes
        on from there."""
        tx.execute("ROLLBACK TO SAVEPOINT person")
        if self._effects.pending is not None:
            del self._effects.pending[self._effects.mark :]

    def _lock(self) -> str:
        return " FOR UPDATE" if self._db.engine == "postgresql" else ""

    # Entries.

    def live_entries(self, tx: Transaction, tenant: str, person_id: str) -> list[Entry]:
        """The person's entries still inside a flow, by flow and number, locked until the transaction ends."""
        rows = tx.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM flow_entries WHERE tenant_id = ? AND person_id = ?"
            f" AND status IN (?, ?) {_PERSON_ORDER}{self._lock()}",
            (tenant, person_id, *LIVE),
        )
        return _by_flow_and_number(rows)

    def persons_inside(self, tenant: str, person_ids: Sequence[str]) -> set[str]:
        """Which of these persons have an entry still inside a flow (read without locking)."""
        found: set[str] = set()
        with self.snapshot() as tx:
            for start in range(0, len(person_ids), _IN_CHUNK):
                chunk = person_ids[start : start + _IN_CHUNK]
                rows = tx.execute(
                    "SELECT DISTINCT person_id FROM flow_entries WHERE tenant_id = ? AND status IN (?, ?)"
                    f" AND person_id IN ({', '.join('?' * len(chunk))})",
                    (tenant, *LIVE, *chunk),
                )
                found.update(row[0] for row in rows)
        return found

    def entry(self, tx: Transaction, tenant: str, flow_id: str, person_id: str, number: int) -> Entry | None:
        """One entry, locked until the transaction ends."""
        rows = tx.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM flow_entries WHERE tenant_id = ? AND flow_id = ? AND person_id = ?"
            f" AND entry_number = ?{self._lock()}",
            (tenant, flow_id, person_id, number),
        )
        return _entry(rows[0]) if rows else None

    def latest_entry(
        self, tx: Transaction, tenant: str, flow_id: str, person_id: str
    ) -> tuple[Entry | None, int]:
        """The entry the re-entry rules read — the live one if any, else the one that ended last — and the
        person's highest entry number in the flow (0 when they never entered it), in one statement. (After a
        merge the numbers no longer follow time: the absorbed person's entries are numbered after the
        survivor's, ADR 38.)"""
        rows = tx.execute(
            f"SELECT {_ENTRY_COLUMNS}, (SELECT MAX(entry_number) FROM flow_entries"
            " WHERE tenant_id = ? AND flow_id = ? AND person_id = ?)"
            " FROM flow_entries WHERE tenant_id = ? AND flow_id = ? AND person_id = ?"
            " ORDER BY CASE WHEN status IN (?, ?) THEN 0 ELSE 1 END, update_time DESC, entry_number DESC"
            " LIMIT 1",
            (tenant, flow_id, person_id, tenant, flow_id, person_id, *LIVE),
        )
        return (_entry(rows[0][:-1]), int(rows[0][-1])) if rows else (None, 0)

    def insert_entry(self, tx: Transaction, tenant: str, entry: Entry) -> bool:
        """Add an entry; False (nothing written) when its number or its triggering event is already taken."""
        rows = tx.execute(
            f"INSERT INTO flow_entries (tenant_id, {_ENTRY_COLUMNS}, converted_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING entry_number",
            (tenant, *_entry_params(entry), entry.converted_time),
        )
        return bool(rows)

    def update_entry(self, tx: Transaction, tenant: str, entry: Entry) -> None:
        """Write an entry read (and locked) in this transaction."""
        body = _entry_params(entry)[-1]
        tx.execute(
            "UPDATE flow_entries SET step_id = ?, status = ?, revision = ?, update_time = ?, body = ?,"
            " converted_time = ? WHERE tenant_id = ? AND flow_id = ? AND person_id = ? AND entry_number = ?",
            (
                entry.step_id,
                entry.status.value,
                entry.revision,
                entry.update_time,
                body,
                entry.converted_time,
                tenant,
                entry.flow_id,
                entry.person_id,
                entry.number,
            ),
        )

    def entries(self, tenant: str, flow_id: str) -> list[Entry]:
        with self.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM flow_entries WHERE tenant_id = ? AND flow_id = ?"
                " ORDER BY person_id, entry_number",
                (tenant, flow_id),
            )
        return [_entry(row) for row in rows]

    # A person's state as a whole: merges move it, erasure deletes it (ADR 38).

    def person_entries(self, tx: Transaction, tenant: str, person_id: str) -> list[Entry]:
        """Every entry of the person, live or ended, by flow and number, locked until the transaction ends."""
        rows = tx.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM flow_entries WHERE tenant_id = ? AND person_id = ?"
            f" {_PERSON_ORDER}{self._lock()}",
            (tenant, person_id),
        )
        return _by_flow_and_number(rows)

    def move_entry(self, tx: Transaction, tenant: str, entry: Entry, person_id: str, number: int) -> None:
        """Give `entry` (read in this transaction) to `person_id` as number `number`, with its timers; its key
        stays the one it was born with (`key_base`), so its timers' keys and step keys do not change."""
        moved = dataclasses.replace(entry, person_id=person_id, number=number, key_base=entry.key())
        tx.execute(
            "UPDATE flow_entries SET person_id = ?, entry_number = ?, body = ?"
            " WHERE tenant_id = ? AND flow_id = ? AND person_id = ? AND entry_number = ?",
            (
                person_id,
                number,
                _entry_params(moved)[-1],
                tenant,
                entry.flow_id,
                entry.person_id,
                entry.number,
            ),
        )
        # A claim in progress (the absorbed person's) fires nothing now: the moved timer is free to claim.
        tx.execute(
            "UPDATE flow_timers SET person_id = ?, entry_number = ?, lease_until = 0"
            " WHERE tenant_id = ? AND flow_id = ? AND person_id = ? AND entry_number = ?",
            (person_id, number, tenant, entry.flow_id, entry.person_id, entry.number),
        )

    def move_runs(
        self, tx: Transaction, tenant: str, person_id: str, survivor: str, numbers: dict[tuple[str, int], int]
    ) -> None:
        """Give the person's step runs to `survivor`, renumbered as their entries were (`numbers`: (flow, old
        number) → new number); their keys stay."""
        rows = tx.execute(
            "SELECT step_key, body FROM flow_step_runs WHERE tenant_id = ? AND person_id = ?",
            (tenant, person_id),
        )
        updates = []
        for key, body in rows:
            run = StepRun(**json.loads(body))
            number = numbers.get((run.flow_id, run.entry_number), run.entry_number)
            moved = dataclasses.replace(run, person_id=survivor, entry_number=number)
            updates.append((survivor, number, json.dumps(asdict(moved), sort_keys=True), tenant, key))
        tx.executemany(
            "UPDATE flow_step_runs SET person_id = ?, entry_number = ?, body = ?"
            " WHERE tenant_id = ? AND step_key = ?",
            updates,
        )

    def forget_person(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """Delete the person's entries, their timers and step runs (erasure); how many rows there were."""
        deleted = 0
        for table in ("flow_timers", "flow_step_runs", "flow_entries"):
            rows = tx.execute(
                f"DELETE FROM {table} WHERE tenant_id = ? AND person_id = ? RETURNING tenant_id",
                (tenant, person_id),
            )
            deleted += len(rows)
        return deleted

    # Timers.

    def add_timer(self, tx: Transaction, tenant: str, timer: Timer) -> None:
        self.add_timers(tx, tenant, [timer])

    def add_timers(self, tx: Transaction, tenant: str, timers: Sequence[Timer]) -> None:
        """Add timers, in one statement per `_ROWS` of them; a key already taken keeps its timer (the
        first of a key wins, within the list too)."""
        rows = [
            (
                tenant,
                t.key,
                t.due_time,
                t.flow_id,
                t.person_id,
                t.entry_number,
                t.kind.value,
                t.step_id,
                t.visit,
                t.reason,
            )
            for t in timers
        ]
        _insert_rows(
            tx,
            f"INSERT INTO flow_timers (tenant_id, lease_until, {_TIMER_COLUMNS})",
            "?, 0, " + "?, " * 8 + "?",
            rows,
        )

    def delete_timer(self, tx: Transaction, tenant: str, key: str) -> None:
        tx.execute("DELETE FROM flow_timers WHERE tenant_id = ? AND timer_key = ?", (tenant, key))

    def delete_claimed(self, tx: Transaction, tenant: str, timer: Timer) -> None:
        """Delete a claimed timer being fired, unless a merge gave its entry to another person meanwhile: the
        timer (same key) is then the survivor's, claimed again when its lease ends (ADR 38)."""
        tx.execute(
            "DELETE FROM flow_timers WHERE tenant_id = ? AND timer_key = ? AND person_id = ?"
            " AND entry_number = ?",
            (tenant, timer.key, timer.person_id, timer.entry_number),
        )

    def delete_entry_timers(self, tx: Transaction, tenant: str, entry: Entry) -> None:
        tx.execute(
            "DELETE FROM flow_timers"
            " WHERE tenant_id = ? AND flow_id = ? AND person_id = ? AND entry_number = ?",
            (tenant, entry.flow_id, entry.person_id, entry.number),
        )

    def claim_due(self, now: int, limit: int, lease_us: int) -> list[tuple[str, Timer]]:
        """Claim up to `limit` timers due at `now` whose lease has passed, for `lease_us`; (tenant, timer)."""
        skip = " FOR UPDATE SKIP LOCKED" if self._db.engine == "postgresql" else ""
        with self.transaction() as tx:
            rows = tx.execute(
                "UPDATE flow_timers SET lease_until = ? WHERE (tenant_id, timer_key) IN"
                " (SELECT tenant_id, timer_key FROM flow_timers WHERE due_time <= ? AND lease_until <= ?"
                f" ORDER BY due_time LIMIT ?{skip}) RETURNING tenant_id, {_TIMER_COLUMNS}",
                (now + lease_us, now, now, limit),
            )
        return sorted((_timer(row) for row in rows), key=lambda pair: pair[1].due_time)

    def next_due(self, tenant: str, person_id: str) -> int | None:
        """When the person's earliest timer is due; None when they have none."""
        with self.transaction() as tx:
            rows = tx.execute(
                "SELECT MIN(due_time) FROM flow_timers WHERE tenant_id = ? AND person_id = ?",
                (tenant, person_id),
            )
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def timers(self, tenant: str) -> list[Timer]:
        with self.transaction() as tx:
            rows = tx.execute(
                f"SELECT tenant_id, {_TIMER_COLUMNS} FROM flow_timers WHERE tenant_id = ? ORDER BY due_time",
                (tenant,),
            )
        return [_timer(row)[1] for row in rows]

    # The outbox and the step runs.

    def add_message(self, tx: Transaction, tenant: str, message: Message) -> bool:
        rows = tx.execute(
            "INSERT INTO flow_outbox (tenant_id, idempotency_key, flow_id, person_id, channel, create_time,"
            " state, body) VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?) ON CONFLICT DO NOTHING"
            " RETURNING idempotency_key",
            (
                tenant,
                message.idempotency_key,
                message.flow_id,
                message.person_id,
                message.channel,
                message.create_time,
                json.dumps(asdict(message), sort_keys=True),
            ),
        )
        return bool(rows)

    def messages(self, tenant: str) -> list[Message]:
        with self.transaction() as tx:
            rows = tx.execute(
                "SELECT body FROM flow_outbox WHERE tenant_id = ? ORDER BY create_time, idempotency_key",
                (tenant,),
            )
        return [Message(**json.loads(row[0])) for row in rows]

    def messages_of(self, tenant: str, person_id: str) -> list[Message]:
        """The outbox's messages to one person, oldest first."""
        with self.transaction() as tx:
            rows = tx.execute(
                "SELECT body FROM flow_outbox WHERE tenant_id = ? AND person_id = ?"
                " ORDER BY create_time, idempotency_key",
                (tenant, person_id),
            )
        return [Message(**json.loads(row[0])) for row in rows]

    def run(self, tx: Transaction, tenant: str, key: str) -> StepRun | None:
        rows = tx.execute(
            "SELECT body FROM flow_step_runs WHERE tenant_id = ? AND step_key = ?", (tenant, key)
        )
        return StepRun(**json.loads(rows[0][0])) if rows else None

    def add_runs(self, tx: Transaction, tenant: str, runs: Sequence[StepRun]) -> None:
        """Add step runs, in one statement per `_ROWS` of them; a key already taken keeps its run (the first
        of a key wins, within the list too)."""
        rows = [
            (
                tenant,
                r.key,
                r.flow_id,
                r.person_id,
                r.step_id,
                r.outcome,
                r.run_time,
                json.dumps(asdict(r), sort_keys=True),
                r.version,
                r.entry_number,
                str(r.detail.get("label", r.detail.get("reason", ""))),
                str(r.detail.get("next_step_id", "")),
            )
            for r in runs
        ]
        _insert_rows(
            tx,
            "INSERT INTO flow_step_runs (tenant_id, step_key, flow_id, person_id, step_id, outcome, run_time,"
            " body, version, entry_number, label, next_step_id)",
            "?, " * 11 + "?",
            rows,
        )

    def runs(self, tenant: str, flow_id: str) -> list[StepRun]:
        with self.transaction() as tx:
            rows = tx.execute(
                "SELECT body FROM flow_step_runs WHERE tenant_id = ? AND flow_id = ?"
                " ORDER BY run_time, step_key",
                (tenant, flow_id),
            )
        return [StepRun(**json.loads(row[0])) for row in rows]

    # The published versions (the flows' store's table, read in this store's transactions).

    def definition(self, tx: Transaction, tenant: str, flow_id: str, version: int) -> dict[str, Any] | None:
        rows = tx.execute(
            "SELECT definition FROM flow_versions WHERE tenant_id = ? AND flow_id = ? AND version = ?",
            (tenant, flow_id, version),
        )
        return dict(json.loads(rows[0][0])) if rows else None
