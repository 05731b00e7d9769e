"""The events table's columns, listed once: the DDL, the insert blocks and the row parser derive from it.

Each column names its ClickHouse type (with codec), the Arrow type it is inserted as, the EventRecord field
it holds (EventColumns has the same fields) and how a read row fills the record back. Writes go in as one
Arrow table per batch (`insert_arrow`): ClickHouse parses Arrow natively, column by column, where the row
form made Python build and serialise every value. `anchor` is not here: ClickHouse computes it
(MATERIALIZED) from the identifiers, so no writer can disagree about it (see schema.py and ADR 0011).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from wayline_journeys.event_columns import EventColumns
from wayline_journeys.events import EventRecord

__all__ = [
    "EVENT_COLUMNS",
    "INSERT_COLUMN_NAMES",
    "READ_COLUMN_NAMES",
    "Column",
    "arrow_table",
    "as_utc",
    "column_definitions",
    "record_from_row",
]


def as_utc(value: datetime) -> datetime:
    """chDB and some server settings return naive datetimes for DateTime64('UTC'); they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional_utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


_STRING = pa.string()
_TIME = pa.timestamp("us", tz="UTC")  # EventColumns holds microseconds since the epoch
_STRINGS = pa.list_(pa.string())


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    arrow_type: pa.DataType  # what a write sends; ClickHouse converts it (a UUID's text, LowCardinality)
    field: str  # the EventRecord (and EventColumns) attribute it stores
    from_db: Callable[[Any], Any] | None = None  # None: the value as read


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("tenant_id", "LowCardinality(String)", _STRING, ""),
    Column("event_id", "UUID", _STRING, "event_id", from_db=str),
    Column("type", "LowCardinality(String)", _STRING, "type"),
    Column("name", "String", _STRING, "name"),
    Column("channel", "LowCardinality(String)", _STRING, "channel"),
    Column("timestamp", "DateTime64(6, 'UTC')", _TIME, "timestamp", from_db=as_utc),
    Column("sent_at", "Nullable(DateTime64(6, 'UTC'))", _TIME, "sent_at", from_db=_optional_utc),
    Column("received_at", "DateTime64(6, 'UTC')", _TIME, "received_at", from_db=as_utc),
    Column("identifier_types", "Array(LowCardinality(String))", _STRINGS, "identifier_types", from_db=tuple),
    Column("identifier_values", "Array(String)", _STRINGS, "identifier_values", from_db=tuple),
    Column("person_id", "String", _STRING, "person_id"),
    Column("properties", "String CODEC(ZSTD(3))", _STRING, "properties_json"),
    Column("context", "String CODEC(ZSTD(3))", _STRING, "context_json"),
    Column("text", "String CODEC(ZSTD(3))", _STRING, "text"),
    Column("revenue", "Nullable(Decimal(38, 9))", pa.decimal128(38, 9), "revenue"),
    Column("revenue_currency", "LowCardinality(String)", _STRING, "revenue_currency"),
    Column("group_id", "String", _STRING, "group_id"),
    Column("plan_violations", "String", _STRING, "plan_violations_json"),
    Column("sentiment_score", "Nullable(Float64)", pa.float64(), "sentiment_score"),
    # Issue 6: the sender's timestamp before ingest's clock-skew correction (Segment's originalTimestamp).
    Column(
        "original_timestamp", "Nullable(DateTime64(6, 'UTC'))", _TIME, "original_timestamp", _optional_utc
    ),
    # Segment's `integrations`, kept verbatim as JSON text like `properties`; "" (what rows written before
    # the column read as) when the sender sent none, so "{}" still means "sent, and empty".
    Column("integrations", "String CODEC(ZSTD(3))", _STRING, "integrations_json"),
    # An alias's previous id as two plain columns, like identifier_types/values, rather than one Tuple: each
    # is a plain Arrow string on the way in and a str on the way out (a Tuple needs an Arrow struct and a
    # converter back), SQL names them directly, the type gets LowCardinality, and rows from before the
    # columns read as "" and "", which is "unset".
    Column("previous_identifier_type", "LowCardinality(String)", _STRING, "previous_identifier_type"),
    Column("previous_identifier_value", "String", _STRING, "previous_identifier_value"),
    # Imported history: point-in-time reads count it from its timestamp, not from received_at (rows from
    # before the column read as 0, live).
    Column("backfill", "Bool", pa.bool_(), "backfill"),
)

INSERT_COLUMN_NAMES = tuple(c.name for c in EVENT_COLUMNS)
_RECORD_COLUMNS = tuple(c for c in EVENT_COLUMNS if c.field)
READ_COLUMN_NAMES = tuple(c.name for c in _RECORD_COLUMNS)


def column_definitions() -> str:
    """`name type` for every column, for CREATE TABLE."""
    return ",\n".join(f"{c.name} {c.sql_type}" for c in EVENT_COLUMNS)


_SCHEMA = pa.schema([pa.field(c.name, c.arrow_type) for c in EVENT_COLUMNS])


def arrow_table(tenant: str, events: EventColumns) -> pa.Table:
    """The insert block of `events` for `tenant`, with INSERT_COLUMN_NAMES as its columns."""
    count = len(events)
    return pa.Table.from_arrays(
        [
            pa.array(getattr(events, c.field), c.arrow_type)
            if c.field
            else pa.repeat(pa.scalar(tenant, c.arrow_type), count)
            for c in EVENT_COLUMNS
        ],
        schema=_SCHEMA,
    )


# (position in a read row, converter) of the columns read back as something else than ClickHouse returns.
_CONVERTED = tuple((i, c.from_db) for i, c in enumerate(_RECORD_COLUMNS) if c.from_db is not None)
_FIELDS = tuple(c.field for c in _RECORD_COLUMNS)


def record_from_row(row: Sequence[Any]) -> EventRecord:
    """The record of a row selected with READ_COLUMN_NAMES (in that order)."""
    values = list(row)
    for i, convert in _CONVERTED:
        values[i] = convert(values[i])
    return EventRecord(**dict(zip(_FIELDS, values, strict=True)))
