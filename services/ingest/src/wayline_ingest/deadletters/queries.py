"""The dead-letter store's SQL: every statement and the filter's WHERE clause, in one place.

Statements are composed only from the schema's constants and `?` marks, never from input (hence the S608
waivers); every value travels as a parameter, and every statement but retention's is scoped by tenant.
"""

from __future__ import annotations

from typing import Any

from wayline.common.sql import Transaction
from wayline.common.timestamps import to_micros
from wayline_ingest.deadletters.model import DeadLetterFilter, DeadLetterRecord, PageCursor
from wayline_ingest.deadletters.schema import SELECT_COLUMNS, record_from_row

__all__ = [
    "CHUNK",
    "COUNT",
    "FIND_BY_IDENTIFIER",
    "FIND_BY_PERSON",
    "INSERT_IDENTIFIER",
    "MARK_REPLAYED",
    "PARK",
    "PURGE",
    "PURGE_IDENTIFIERS",
    "SELECT",
    "delete_ids",
    "placeholders",
    "select_page",
    "where_clause",
]

CHUNK = 500  # rows per replay round trip and per IN (...) list: bounded memory and statement size

PARK = (
    f"INSERT INTO dead_letters ({SELECT_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, ?) "
    "ON CONFLICT (tenant, sink, event_id) DO UPDATE SET "
    "state = excluded.state, error_code = excluded.error_code, "
    "error_reason = excluded.error_reason, error_message = excluded.error_message, "
    "error_field = excluded.error_field, "
    "attempt_count = dead_letters.attempt_count + excluded.attempt_count, "
    "dead_letter_time = excluded.dead_letter_time, event_name = excluded.event_name, "
    "person_id = excluded.person_id, payload = excluded.payload "
    "RETURNING id"
)
INSERT_IDENTIFIER = (
    "INSERT INTO dead_letter_identifiers (dead_letter_id, tenant, type, value) VALUES (?, ?, ?, ?)"
)
FIND_BY_IDENTIFIER = (
    "SELECT dead_letter_id FROM dead_letter_identifiers WHERE tenant = ? AND type = ? AND value = ?"
)
SELECT = f"SELECT {SELECT_COLUMNS} FROM dead_letters WHERE "  # noqa: S608
COUNT = "SELECT COUNT(*) FROM dead_letters WHERE "
# The replay is counted either way; the state turns REPLAYED only where the dead letter was not parked again
# meanwhile (its sink refused the replay before this mark): that one stays PENDING with the newer failure.
MARK_REPLAYED = (
    "UPDATE dead_letters SET replay_count = replay_count + 1, replay_time = ?, "
    "state = CASE WHEN dead_letter_time = ? THEN ? ELSE state END "
    "WHERE tenant = ? AND id = ?"
)

FIND_BY_PERSON = "SELECT id FROM dead_letters WHERE tenant = ? AND person_id = ?"
PURGE_IDENTIFIERS = (
    "DELETE FROM dead_letter_identifiers WHERE dead_letter_id IN "
    "(SELECT id FROM dead_letters WHERE dead_letter_time < ?)"
)
PURGE = "DELETE FROM dead_letters WHERE dead_letter_time < ? RETURNING id"


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def where_clause(tenant: str, f: DeadLetterFilter) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and its parameters for `f` within `tenant`."""
    clauses: list[str] = ["tenant = ?"]
    params: list[Any] = [tenant]
    for column, value in (
        ("sink", f.sink),
        ("state", f.state.value if f.state else None),
        ("event_name", f.event_name),
        ("error_code", f.error_code),
        ("error_reason", f.error_reason),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.start is not None:
        clauses.append("dead_letter_time >= ?")
        params.append(to_micros(f.start))
    if f.end is not None:
        clauses.append("dead_letter_time < ?")
        params.append(to_micros(f.end))
    return " AND ".join(clauses), params


def select_page(
    tx: Transaction, where: str, params: list[Any], after: PageCursor | None, limit: int
) -> list[DeadLetterRecord]:
    """Up to `limit` matching dead letters after `after`, newest first (keyset on time, then id)."""
    sql, values = SELECT + where, list(params)
    if after is not None:
        sql += " AND (dead_letter_time < ? OR (dead_letter_time = ? AND id < ?))"
        values += [after.dead_letter_time_us, after.dead_letter_time_us, after.id]
    sql += " ORDER BY dead_letter_time DESC, id DESC LIMIT ?"
    return [record_from_row(row) for row in tx.execute(sql, [*values, limit])]


def delete_ids(tx: Transaction, tenant: str, ids: list[str]) -> None:
    """Delete these dead letters of `tenant` and their identifiers, a bounded IN (...) list at a time."""
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        marks = placeholders(len(part))
        tx.execute(
            f"DELETE FROM dead_letter_identifiers WHERE tenant = ? AND dead_letter_id IN ({marks})",  # noqa: S608
            (tenant, *part),
        )
        tx.execute(f"DELETE FROM dead_letters WHERE tenant = ? AND id IN ({marks})", (tenant, *part))  # noqa: S608
