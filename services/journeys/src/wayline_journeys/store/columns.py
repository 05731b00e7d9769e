"""The events table's columns, listed once: the DDL, the insert rows and the row parser all derive from it.

Each column names its ClickHouse type (with codec), how an EventRecord fills it and how a read row fills the
record back. `anchor` is not here: ClickHouse computes it (MATERIALIZED) from the identifiers, so no writer
can disagree about it (see schema.py and ADR 0011).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wayline_journeys.events import EventRecord

__all__ = [
    "EVENT_COLUMNS",
    "INSERT_COLUMN_NAMES",
    "READ_COLUMN_NAMES",
    "Column",
    "as_utc",
    "column_definitions",
    "record_from_row",
    "row_of",
]


def as_utc(value: datetime) -> datetime:
    """chDB and some server settings return naive datetimes for DateTime64('UTC'); they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional_utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    field: str  # the EventRecord attribute it stores
    to_db: Callable[[Any], Any] = _same
    from_db: Callable[[Any], Any] = _same


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("tenant_id", "LowCardinality(String)", ""),
    Column("event_id", "UUID", "event_id", from_db=str),
    Column("type", "LowCardinality(String)", "type"),
    Column("name", "String", "name"),
    Column("channel", "LowCardinality(String)", "channel"),
    Column("timestamp", "DateTime64(6, 'UTC')", "timestamp", from_db=as_utc),
    Column("sent_at", "Nullable(DateTime64(6, 'UTC'))", "sent_at", from_db=_optional_utc),
    Column("received_at", "DateTime64(6, 'UTC')", "received_at", from_db=as_utc),
    Column("identifier_types", "Array(LowCardinality(String))", "identifier_types", list, tuple),
    Column("identifier_values", "Array(String)", "identifier_values", list, tuple),
    Column("person_id", "String", "person_id"),
    Column("properties", "String CODEC(ZSTD(3))", "properties_json"),
    Column("context", "String CODEC(ZSTD(3))", "context_json"),
    Column("text", "String CODEC(ZSTD(3))", "text"),
    Column("revenue", "Nullable(Decimal(38, 9))", "revenue"),
    Column("revenue_currency", "LowCardinality(String)", "revenue_currency"),
    Column("group_id", "String", "group_id"),
    Column("plan_violations", "String", "plan_violations_json"),
    Column("sentiment_score", "Nullable(Float64)", "sentiment_score"),
    # Issue 6: the sender's timestamp before ingest's clock-skew correction (Segment's originalTimestamp).
    Column(
        "original_timestamp", "Nullable(DateTime64(6, 'UTC'))", "original_timestamp", from_db=_optional_utc
    ),
)

INSERT_COLUMN_NAMES = tuple(c.name for c in EVENT_COLUMNS)
_RECORD_COLUMNS = tuple(c for c in EVENT_COLUMNS if c.field)
READ_COLUMN_NAMES = tuple(c.name for c in _RECORD_COLUMNS)


def column_definitions() -> str:
    """`name type` for every column, for CREATE TABLE."""
    return ",\n".join(f"{c.name} {c.sql_type}" for c in EVENT_COLUMNS)


def row_of(tenant: str, record: EventRecord) -> list[Any]:
    """The insert row of `record`, in INSERT_COLUMN_NAMES order."""
    return [tenant if not c.field else c.to_db(getattr(record, c.field)) for c in EVENT_COLUMNS]


def record_from_row(row: Sequence[Any]) -> EventRecord:
    """The record of a row selected with READ_COLUMN_NAMES (in that order)."""
    return EventRecord(**{c.field: c.from_db(value) for c, value in zip(_RECORD_COLUMNS, row, strict=True)})
