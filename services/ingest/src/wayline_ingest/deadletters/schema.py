"""The dead-letter tables: one column list from which the DDL, the insert and the row parsing come.

Times are stored as microseconds since the epoch in BIGINT columns: the same type and the same ordering on
SQLite and PostgreSQL, and an exact key for paging (a TIMESTAMP column would round differently per engine).
Identifiers live in a side table indexed by (tenant, type, value) so that erasure finds a person's dead
letters without reading payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wayline.common.sql import Database
from wayline.common.timestamps import from_micros
from wayline_ingest.deadletters.model import DeadLetterRecord, DeadLetterState

__all__ = ["COLUMNS", "SELECT_COLUMNS", "ddl", "identifier_key", "record_from_row"]

# (name, SQL type); `{blob}` is the engine's binary type. The order is the order of DeadLetterRecord.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "TEXT NOT NULL PRIMARY KEY"),
    ("tenant", "TEXT NOT NULL"),
    ("sink", "TEXT NOT NULL"),
    ("event_id", "TEXT NOT NULL"),
    ("event_name", "TEXT NOT NULL"),
    ("person_id", "TEXT NOT NULL"),
    ("state", "TEXT NOT NULL"),
    ("error_code", "TEXT NOT NULL"),
    ("error_reason", "TEXT NOT NULL"),
    ("error_message", "TEXT NOT NULL"),
    ("error_field", "TEXT NOT NULL"),
    ("attempt_count", "BIGINT NOT NULL"),
    ("replay_count", "BIGINT NOT NULL"),
    ("first_attempt_time", "BIGINT NOT NULL"),
    ("dead_letter_time", "BIGINT NOT NULL"),
    ("replay_time", "BIGINT"),
    ("payload", "{blob} NOT NULL"),
)
SELECT_COLUMNS = ", ".join(name for name, _ in COLUMNS)


def ddl(db: Database) -> list[str]:
    """The statements that create the tables and indexes if they are missing (safe to run at every start)."""
    columns = ",\n  ".join(f"{name} {kind.format(blob=db.blob_type)}" for name, kind in COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS dead_letters (\n  {columns},\n  UNIQUE (tenant, sink, event_id)\n)",
        # The list order (newest parked first) and keyset paging.
        "CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (tenant, dead_letter_time, id)",
        "CREATE INDEX IF NOT EXISTS dead_letters_by_person ON dead_letters (tenant, person_id)",
        # Retention runs across tenants.
        "CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (dead_letter_time)",
        "CREATE TABLE IF NOT EXISTS dead_letter_identifiers (\n"
        "  dead_letter_id TEXT NOT NULL,\n"
        "  tenant TEXT NOT NULL,\n"
        "  type TEXT NOT NULL,\n"
        "  value TEXT NOT NULL,\n"
        "  PRIMARY KEY (dead_letter_id, type, value)\n"
        ")",
        "CREATE INDEX IF NOT EXISTS dead_letter_identifiers_by_value "
        "ON dead_letter_identifiers (tenant, type, value)",
    ]


def identifier_key(kind: str, value: str) -> tuple[str, str]:
    """The form an identifier is stored and looked up in. Erasure may name an email in another case than
    the event carried it, so emails are compared case-insensitively; other types exactly (a user id may be
    case-sensitive, and erasing another person's data would be worse than missing one)."""
    value = value.strip()
    return kind, value.lower() if kind == "email" else value


def record_from_row(row: Sequence[Any]) -> DeadLetterRecord:
    """A record from a row selected with SELECT_COLUMNS."""
    (
        id_,
        tenant,
        sink,
        event_id,
        event_name,
        person_id,
        state,
        error_code,
        error_reason,
        error_message,
        error_field,
        attempt_count,
        replay_count,
        first_attempt_time,
        dead_letter_time,
        replay_time,
        payload,
    ) = row
    return DeadLetterRecord(
        id=id_,
        tenant=tenant,
        sink=sink,
        event_id=event_id,
        event_name=event_name,
        person_id=person_id,
        state=DeadLetterState(state),
        error_code=error_code,
        error_reason=error_reason,
        error_message=error_message,
        error_field=error_field,
        attempt_count=int(attempt_count),
        replay_count=int(replay_count),
        first_attempt_time=from_micros(first_attempt_time),
        dead_letter_time=from_micros(dead_letter_time),
        replay_time=from_micros(replay_time) if replay_time is not None else None,
        payload=bytes(payload),
    )
