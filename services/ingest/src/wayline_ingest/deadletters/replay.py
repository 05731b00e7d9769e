"""Replaying dead letters: put them back in their own sink's queue, then mark them REPLAYED.

The order matters. The payloads are requeued first (the service appends a spool record addressed to that
sink only, so the sinks that already took the event skip it) and marked second. A crash in between replays
them again on the next call, which is safe because every sink is idempotent by event_id; the other order
could mark a dead letter replayed that never was. A dead letter parked again while its replay was being
marked (the sink refused it at once) keeps the newer PENDING state, and its replay is still counted: the
state changes only on the row as read, the count and the replay time on the row as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from wayline.common.errors import FieldViolation
from wayline.common.sql import Database
from wayline.common.timestamps import to_micros
from wayline_ingest.deadletters import queries as q
from wayline_ingest.deadletters.model import (
    MAX_REPLAY_NAMES,
    DeadLetterFilter,
    DeadLetterNotFound,
    DeadLetterRecord,
    DeadLetterState,
    InvalidDeadLetterRequest,
    PageCursor,
)
from wayline_ingest.deadletters.schema import record_from_row

__all__ = ["Replayer", "Requeue"]

# requeue(sink, tenant, payloads): append the payloads to the spool for that sink only; raise on failure.
Requeue = Callable[[str, str, list[bytes]], None]


class Replayer:
    def __init__(self, db: Database, requeue: Requeue, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._requeue = requeue
        self._clock = clock

    def replay(
        self,
        tenant: str,
        *,
        ids: Sequence[str] | None,
        dead_letter_filter: DeadLetterFilter | None,
        validate_only: bool,
    ) -> int:
        if bool(ids) == (dead_letter_filter is not None):
            raise InvalidDeadLetterRequest(
                "set exactly one of names and filter",
                [
                    FieldViolation("names", "set either names or filter", reason="NAMES_OR_FILTER"),
                    FieldViolation("filter", "set either names or filter", reason="NAMES_OR_FILTER"),
                ],
            )
        if ids:
            if len(ids) > MAX_REPLAY_NAMES:
                raise InvalidDeadLetterRequest(
                    f"at most {MAX_REPLAY_NAMES} names per call; replay by filter for more",
                    [FieldViolation("names", f"more than {MAX_REPLAY_NAMES} names", reason="TOO_MANY_NAMES")],
                )
            return self._replay_ids(tenant, list(dict.fromkeys(ids)), validate_only)
        assert dead_letter_filter is not None
        where, params = q.where_clause(tenant, dead_letter_filter)
        if validate_only:
            with self._db.transaction() as tx:
                return int(tx.execute(q.COUNT + where, params)[0][0])
        replayed = 0
        for chunk in self._chunks(where, params):
            self._requeue_and_mark(tenant, chunk)
            replayed += len(chunk)
        return replayed

    def _replay_ids(self, tenant: str, ids: Sequence[str], validate_only: bool) -> int:
        """All or nothing: NOT_FOUND, replaying none, when one named dead letter is not the tenant's."""
        found: list[DeadLetterRecord] = []
        with self._db.transaction() as tx:
            for start in range(0, len(ids), q.CHUNK):
                part = ids[start : start + q.CHUNK]
                rows = tx.execute(
                    q.SELECT + f"tenant = ? AND id IN ({q.placeholders(len(part))})", (tenant, *part)
                )
                found.extend(record_from_row(row) for row in rows)
        missing = sorted(set(ids) - {record.id for record in found})
        if missing:
            names = ", ".join(f"deadLetters/{m}" for m in missing[:10])
            raise DeadLetterNotFound(
                f"{len(missing)} dead letter(s) do not exist: {names}; nothing was replayed",
                metadata={"missing_count": str(len(missing))},
            )
        if not validate_only:
            self._requeue_and_mark(tenant, found)
        return len(found)

    def _chunks(self, where: str, params: list[Any]) -> Iterator[list[DeadLetterRecord]]:
        """The matching dead letters, newest first, a chunk at a time (keyset: marking does not move them)."""
        cursor: PageCursor | None = None
        while True:
            with self._db.transaction() as tx:
                chunk = q.select_page(tx, where, params, cursor, q.CHUNK)
            if not chunk:
                return
            yield chunk
            if len(chunk) < q.CHUNK:
                return
            cursor = PageCursor(to_micros(chunk[-1].dead_letter_time), chunk[-1].id, "")

    def _requeue_and_mark(self, tenant: str, records: Sequence[DeadLetterRecord]) -> None:
        by_sink: dict[str, list[DeadLetterRecord]] = {}
        # Oldest parked first: as close to the order the sink first saw them in as the store knows.
        for record in sorted(records, key=lambda r: (r.dead_letter_time, r.id)):
            by_sink.setdefault(record.sink, []).append(record)
        for sink, group in by_sink.items():
            self._requeue(sink, tenant, [record.payload for record in group])
            now = to_micros(self._clock())
            with self._db.transaction() as tx:
                tx.executemany(
                    q.MARK_REPLAYED,
                    [
                        (now, to_micros(r.dead_letter_time), DeadLetterState.REPLAYED.value, tenant, r.id)
                        for r in group
                    ],
                )
