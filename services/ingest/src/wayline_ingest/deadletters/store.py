"""The dead-letter store: events a sink refused for good, kept with why, listable, replayable and erasable.

Snowplow's typed bad rows are the model: a refused event is never dropped; it is kept with the failure
(status code, ErrorInfo reason, message, blamed field path) and the payload exactly as parked, so that once
the sink or the data is fixed it can be put back in that one sink's queue (replay.py). Parking is an upsert
on (tenant, sink, event_id): a replay that fails again updates its dead letter instead of adding a second.
The SQL lives in queries.py, the tables in schema.py; this class only sequences them in transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from wayline.common.errors import FieldViolation
from wayline.common.sql import Database
from wayline.common.timestamps import to_micros
from wayline_ingest.deadletters import queries as q
from wayline_ingest.deadletters.converters import event_keys
from wayline_ingest.deadletters.model import (
    DeadLetterFilter,
    DeadLetterNotFound,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterState,
    InvalidDeadLetterRequest,
    PageCursor,
)
from wayline_ingest.deadletters.replay import Replayer, Requeue
from wayline_ingest.deadletters.schema import ddl, identifier_key, record_from_row
from wayline_ingest.sinks.base import DeliveryFailure

__all__ = ["DeadLetters", "Requeue", "page_token_after"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def page_token_after(record: DeadLetterRecord, dead_letter_filter: DeadLetterFilter) -> str:
    """The token of the page that starts after `record` (the most recently parked first) for the filter."""
    return PageCursor(to_micros(record.dead_letter_time), record.id, dead_letter_filter.digest()).encode()


class DeadLetters:
    """The store; implements delivery's DeadLetterPark. Thread-safe: the database keeps one connection per
    thread, and every method is one or a few short transactions."""

    def __init__(self, db: Database, requeue: Requeue, clock: Callable[[], datetime] = _utc_now) -> None:
        self._db = db
        self._clock = clock
        self._replayer = Replayer(db, requeue, clock)

    def migrate(self) -> None:
        """Create the tables and indexes that are missing; safe at every start and on every replica."""
        with self._db.transaction() as tx:
            for statement in ddl(self._db):
                tx.execute(statement)

    def park(
        self,
        sink: str,
        tenant: str,
        event: bytes,
        *,
        failure: DeliveryFailure,
        attempts: int,
        first_attempt: datetime,
    ) -> None:
        """Keep `event`, which `sink` refused for good. A dead letter already kept for the same event and
        sink (a replay that failed again) returns to PENDING with the new failure and the attempts added;
        its first attempt time and replay count stay."""
        keys = event_keys(event)
        row = (
            uuid.uuid4().hex,
            tenant,
            sink,
            keys.event_id,
            keys.name,
            keys.person_id,
            DeadLetterState.PENDING.value,
            failure.code,
            failure.reason,
            failure.message,
            failure.field,
            attempts,
            to_micros(first_attempt),
            to_micros(self._clock()),
            event,
        )
        identifiers = sorted({identifier_key(kind, value) for kind, value in keys.identifiers})
        with self._db.transaction() as tx:
            dead_letter_id = tx.execute(q.PARK, row)[0][0]
            tx.execute("DELETE FROM dead_letter_identifiers WHERE dead_letter_id = ?", (dead_letter_id,))
            if identifiers:
                tx.executemany(
                    q.INSERT_IDENTIFIER,
                    [(dead_letter_id, tenant, kind, value) for kind, value in identifiers],
                )

    def get(self, tenant: str, dead_letter_id: str) -> DeadLetterRecord:
        """One dead letter of `tenant`; NOT_FOUND when there is none with that id."""
        with self._db.transaction() as tx:
            rows = tx.execute(q.SELECT + "tenant = ? AND id = ?", (tenant, dead_letter_id))
        if not rows:
            raise DeadLetterNotFound(f"dead letter deadLetters/{dead_letter_id} does not exist")
        return record_from_row(rows[0])

    def list(
        self, tenant: str, dead_letter_filter: DeadLetterFilter, page_size: int, page_token: str = ""
    ) -> DeadLetterPage:
        """One page, the most recently parked first, and how many match in total. INVALID_ARGUMENT for a
        page token that is not ours or was issued for another filter."""
        cursor = PageCursor.decode(page_token, dead_letter_filter) if page_token else None
        where, params = q.where_clause(tenant, dead_letter_filter)
        with self._db.transaction() as tx:
            total = int(tx.execute(q.COUNT + where, params)[0][0])
            records = q.select_page(tx, where, params, cursor, page_size + 1)
        next_token = ""
        if len(records) > page_size:
            records = records[:page_size]
            next_token = page_token_after(records[-1], dead_letter_filter)
        return DeadLetterPage(dead_letters=records, next_page_token=next_token, total_size=total)

    def replay(
        self,
        tenant: str,
        *,
        ids: Sequence[str] | None = None,
        dead_letter_filter: DeadLetterFilter | None = None,
        validate_only: bool = False,
    ) -> int:
        """Put dead letters back in their sink's queue, chosen by id or by filter; how many were (or, with
        `validate_only`, would be) replayed. INVALID_ARGUMENT unless exactly one of ids and filter is set or
        with more than 1,000 ids; NOT_FOUND, replaying nothing, when a named one does not exist."""
        return self._replayer.replay(
            tenant, ids=ids, dead_letter_filter=dead_letter_filter, validate_only=validate_only
        )

    def delete_person(self, tenant: str, person_id: str, identifiers: Sequence[tuple[str, str]]) -> int:
        """Erase the dead letters resolved to `person_id` or carrying one of `identifiers` (type, value);
        how many. Idempotent: a second call deletes nothing more."""
        if not person_id and not identifiers:
            raise InvalidDeadLetterRequest(
                "name the person by person_id or identifiers",
                [
                    FieldViolation("person_id", "set person_id or identifiers", reason="PERSON_REQUIRED"),
                    FieldViolation("identifiers", "set person_id or identifiers", reason="PERSON_REQUIRED"),
                ],
            )
        keys = sorted({identifier_key(kind, value) for kind, value in identifiers})
        with self._db.transaction() as tx:
            ids: set[str] = set()
            if person_id:
                ids.update(row[0] for row in tx.execute(q.FIND_BY_PERSON, (tenant, person_id)))
            for kind, value in keys:
                ids.update(row[0] for row in tx.execute(q.FIND_BY_IDENTIFIER, (tenant, kind, value)))
            q.delete_ids(tx, tenant, sorted(ids))
        return len(ids)

    def purge_expired(self, now: datetime, retention_days: int) -> int:
        """Delete every tenant's dead letters parked more than `retention_days` before `now`; how many."""
        cutoff = to_micros(now - timedelta(days=retention_days))
        with self._db.transaction() as tx:
            tx.execute(q.PURGE_IDENTIFIERS, (cutoff,))
            return len(tx.execute(q.PURGE, (cutoff,)))
