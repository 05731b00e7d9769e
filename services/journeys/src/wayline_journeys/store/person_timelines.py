"""`person_timelines`: every stored person's events in time order, in few columns, for GetTimeline (ADR 99).

`events` is keyed by anchor (ADR 0011), so a person's page reads the few ranges their anchors name, after a
lookup of those anchors, and every one of the page's two dozen columns in every part it touches: on chDB the
page's statement cost 10-12 ms, most of it per column and part, not per row (docs/benchmarks.md,
2026-12-07). This copy of each event is keyed by (tenant_id, person_id, timestamp, event_id): a person's
page is one range per part, and its columns are the key, `received_at`, what a page may filter on (name,
channel) and `payload`, every other field of the event as one JSON array that ClickHouse writes and the store
decodes (with the name and channel again: a page without those filters reads neither column).
Materialized views fill it as `events` and `person_overrides` are written, so no writer can disagree, and
an event stored without a person (before identity resolved it) has no row here.

It answers only the read as stored (store/timeline.py): the events stored under a person, exact for a
person no override names. So every override row also writes a *marker* row for each person it names
(`event_id` all zeros, no payload): the page's statement returns the marker first, and the store then
reads through the overrides from `events`, as it did when it counted the override rows in the statement.
Markers stay when an erasure deletes the overrides: an extra marker costs a slower exact read, never a wrong
one.

Copies of one event (a retry) are kept apart by the key when their person or time differ, so reads take
the newest copy per event id (ReplacingMergeTree(received_at) also collapses identical keys in merges), as
FINAL does on `events`. Erasures delete an erased event's rows here too, found by event id (erasure.py).

The payload's fields are append-only: a version that adds a column to `events` adds its field at the end of
`PAYLOAD_FIELDS`, and rows written before it decode with the record's default for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from wayline.common.timestamps import from_micros
from wayline_journeys.events import EventRecord
from wayline_journeys.store.columns import as_utc
from wayline_journeys.store.migrations import Step
from wayline_journeys.store.topology import Topology

__all__ = [
    "INDEX_GRANULARITY",
    "MARKER_EVENT_ID",
    "PAYLOAD_FIELDS",
    "ROW_COLUMNS",
    "person_timeline_tables",
    "person_timelines_in_finer_granules",
    "record_from_timeline_row",
]

# The nil UUID. An event sent with it would only send its person's pages to the exact read: never wrong.
MARKER_EVENT_ID = "00000000-0000-0000-0000-000000000000"


def _micros(value: int | str) -> datetime:
    # ClickHouse may quote 64-bit integers in JSON (output_format_json_quote_64bit_integers).
    return from_micros(int(value))


@dataclass(frozen=True)
class PayloadField:
    field: str  # the EventRecord attribute
    sql: str  # its JSON-able value, over the columns of `events`
    decode: Callable[[Any], Any] | None = None  # of a value that is not null; None: the JSON value as it is


# The payload's fields, in order (append only: the module's docstring). Times as microseconds and the
# revenue as its decimal text, so both come back exact.
PAYLOAD_FIELDS: tuple[PayloadField, ...] = (
    PayloadField("type", "type"),
    PayloadField("name", "name"),
    PayloadField("channel", "channel"),
    PayloadField("sent_at", "toUnixTimestamp64Micro(sent_at)", _micros),
    PayloadField("identifier_types", "identifier_types", tuple),
    PayloadField("identifier_values", "identifier_values", tuple),
    PayloadField("properties_json", "properties"),
    PayloadField("context_json", "context"),
    PayloadField("text", "text"),
    PayloadField("revenue", "toString(revenue)", Decimal),
    PayloadField("revenue_currency", "revenue_currency"),
    PayloadField("group_id", "group_id"),
    PayloadField("plan_violations_json", "plan_violations"),
    # float(): ClickHouse writes a whole float without a point, which JSON reads as an int.
    PayloadField("sentiment_score", "sentiment_score", float),
    PayloadField("original_timestamp", "toUnixTimestamp64Micro(original_timestamp)", _micros),
    PayloadField("integrations_json", "integrations"),
    PayloadField("previous_identifier_type", "previous_identifier_type"),
    PayloadField("previous_identifier_value", "previous_identifier_value"),
    PayloadField("backfill", "backfill"),
)
_PAYLOAD_SQL = f"toJSONString(({', '.join(f.sql for f in PAYLOAD_FIELDS)}))"

# What a read selects, in this order (record_from_timeline_row): the person is the one asked for.
ROW_COLUMNS = ("timestamp", "event_id", "received_at", "payload")
_COLUMN_TYPES = (
    "person_id String",
    "timestamp DateTime64(6, 'UTC')",
    "event_id UUID",
    "received_at DateTime64(6, 'UTC')",
    "name String",
    "channel LowCardinality(String)",
    "payload String CODEC(ZSTD(3))",
)


def _event_rows(events: str) -> str:
    return (
        f"SELECT tenant_id, person_id, timestamp, event_id, received_at, name, channel, {_PAYLOAD_SQL} "
        f"AS payload FROM {events} WHERE person_id != ''"
    )


def _marker_rows(overrides: str) -> str:
    # One per person an override row names; received_at is when it was recorded, so a newer marker wins.
    return (
        f"SELECT tenant_id, marked AS person_id, toDateTime64(0, 6, 'UTC') AS timestamp, "
        f"toUUID('{MARKER_EVENT_ID}') AS event_id, recorded_at AS received_at, '' AS name, '' AS channel, "
        f"'' AS payload FROM {overrides} ARRAY JOIN [person_id, override_person_id] AS marked "
        "WHERE marked != ''"
    )


# Rows per granule (version 15; 8,192 before, ClickHouse's default). A page decompresses the granules that
# hold the person's rows, each a few hundred bytes of payload: with 8,192 rows that was megabytes per part for
# a page of a few dozen rows. 1,024 read a page 0.8-1.5 ms faster on the bench's 10M events in one process,
# for 3 % more disk and eight times the marks (docs/benchmarks.md, 2026-12-07 (day)).
INDEX_GRANULARITY = 1024


def _table_ddl(topology: Topology, table: str, granularity: int) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table}{topology.on_cluster} "
        f"(tenant_id LowCardinality(String), {', '.join(_COLUMN_TYPES)}, "
        # An erasure finds every copy of an erased event by its id, whichever person it is stored under.
        "INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4) "
        f"ENGINE = {topology.engine('person_timelines', 'ReplacingMergeTree', 'received_at')} "
        "ORDER BY (tenant_id, person_id, timestamp, event_id)"
        f"{f' SETTINGS index_granularity = {granularity}' if granularity != 8192 else ''}"
    )


def person_timeline_tables(topology: Topology) -> Sequence[Step]:
    """Version 14: the table (in ClickHouse's default granules; version 15 makes them finer), its views, and
    the copies of what the store holds."""
    table = topology.local("person_timelines")
    events_fill = _event_rows(topology.local("events"))
    markers_fill = _marker_rows("person_overrides")

    def backfill(client: Client, topology: Topology) -> None:
        # After the views exist, so nothing written meanwhile is missed; a rerun after a crash copies again,
        # and the copies collapse like a retried event's.
        client.command(f"INSERT INTO {table} {markers_fill}")
        client.command(f"INSERT INTO {table} {events_fill}")

    return [
        _table_ddl(topology, table, 8192),
        *topology.distributed("person_timelines", "cityHash64(person_id)"),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv{topology.on_cluster} TO {table} AS {events_fill}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_markers_mv{topology.on_cluster} "
        f"TO {table} AS {markers_fill}",
        backfill,
    ]


def person_timelines_in_finer_granules(client: Client, topology: Topology) -> None:
    """Version 15: rebuild `person_timelines` with INDEX_GRANULARITY rows per granule.

    ClickHouse cannot change a table's granularity, so the rows are copied into a new table that is then
    swapped in (EXCHANGE, atomic); the views name their target table, so they write into the new one from
    the swap. Rows written while the copy ran land in the old table, whose merges stop meanwhile; its parts
    that the copy did not find are copied after the swap (a part written just as the copy began may be
    copied twice: copies collapse as a retry's do, and the page takes one row per event id). A rerun after
    a crash before the swap drops the copy and starts again; after it, it copies the whole old table again
    before dropping it. On a cluster the tables stay as they are: coarser granules read the same rows,
    slower (docs/journeys.md)."""
    if topology.clustered:
        return
    settings = {
        str(name): str(engine)
        for name, engine in client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
            "AND name IN ('person_timelines', 'person_timelines_rebuild')"
        ).result_rows
    }
    current = f"index_granularity = {INDEX_GRANULARITY}," in settings.get("person_timelines", "") + ","
    if "person_timelines_rebuild" in settings and current:
        # Swapped, then interrupted: the leftover is the old table, and rows written late may be only there.
        client.command("INSERT INTO person_timelines SELECT * FROM person_timelines_rebuild")
    client.command("DROP TABLE IF EXISTS person_timelines_rebuild")
    if current:
        return
    client.command("SYSTEM STOP MERGES person_timelines")
    try:
        # With merges stopped, a part that is not one of these is a write made since: the copy misses it.
        copied = [
            str(name)
            for (name,) in client.query(
                "SELECT name FROM system.parts WHERE database = currentDatabase() "
                "AND table = 'person_timelines' AND active"
            ).result_rows
        ]
        client.command(_table_ddl(topology, "person_timelines_rebuild", INDEX_GRANULARITY))
        client.command("INSERT INTO person_timelines_rebuild SELECT * FROM person_timelines")
        client.command("EXCHANGE TABLES person_timelines AND person_timelines_rebuild")
    except BaseException:
        client.command("SYSTEM START MERGES person_timelines")  # still the old table: it goes on serving
        raise
    client.command(
        "INSERT INTO person_timelines SELECT * FROM person_timelines_rebuild "
        "WHERE _part NOT IN {copied:Array(String)}",
        parameters={"copied": copied},
    )
    client.command("DROP TABLE person_timelines_rebuild")


def record_from_timeline_row(person_id: str, row: Sequence[Any]) -> EventRecord:
    """The record of a row of `person_id` selected as ROW_COLUMNS (not a marker's)."""
    timestamp, event_id, received_at, payload = row
    values = json.loads(payload)
    fields: dict[str, Any] = {}
    for spec, value in zip(PAYLOAD_FIELDS, values, strict=False):  # older rows may hold fewer
        fields[spec.field] = value if spec.decode is None or value is None else spec.decode(value)
    return EventRecord(
        event_id=str(event_id),
        timestamp=as_utc(timestamp),
        received_at=as_utc(received_at),
        person_id=person_id,
        **fields,
    )
