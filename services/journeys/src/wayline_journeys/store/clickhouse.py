"""The event store on ClickHouse through clickhouse-connect: chDB in-process, or a ClickHouse server.

All SQL is parameterised with server-side binding ({name:Type}); every statement is scoped by tenant.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import structlog
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from wayline.common.timestamps import to_micros
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.events import EventRecord, TimelineCursor, TimelineOrder, TimelineQuery
from wayline_journeys.overrides import OverrideMapping
from wayline_journeys.store.group_commit import GroupCommitWriter
from wayline_journeys.store.person_sql import IDENTIFIER_MATCH, current_person_sql
from wayline_journeys.store.schema import MIGRATIONS

__all__ = ["ClickHouseEventStore", "connect_clickhouse", "store_error"]

log = structlog.get_logger("wayline.journeys.store")

_COLUMNS = (
    "tenant_id",
    "event_id",
    "type",
    "name",
    "channel",
    "timestamp",
    "sent_at",
    "received_at",
    "identifier_types",
    "identifier_values",
    "person_id",
    "properties",
    "context",
    "text",
    "revenue",
    "revenue_currency",
    "group_id",
    "plan_violations",
    "sentiment_score",
    "original_timestamp",
)


_NO_OVERRIDES = OverrideMapping()
_ERASE_CHUNK = 10_000  # event ids per DELETE: one mutation for almost every person, bounded statements


def connect_clickhouse(url: str, database: str, embedded_path: Path) -> Client:
    """A client for `url`, or for the embedded chDB engine at `embedded_path` when `url` is empty."""
    if url:
        admin = clickhouse_connect.get_client(dsn=url)
        admin.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
        return clickhouse_connect.get_client(dsn=url, database=database)
    embedded_path.mkdir(parents=True, exist_ok=True)
    admin = clickhouse_connect.get_client(interface="chdb", path=str(embedded_path))
    admin.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
    return clickhouse_connect.get_client(interface="chdb", path=str(embedded_path), database=database)


def _identifier(name: str) -> str:
    """A database name is configuration, not input, but it is still checked before it reaches DDL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"invalid ClickHouse database name {name!r}")
    return f"`{name}`"


def _as_utc(value: datetime) -> datetime:
    # chDB and some server settings return naive datetimes for DateTime64('UTC'); they are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ClickHouseEventStore:
    """Writes and reads journey events. Thread-safe: one client shared by the server's worker threads."""

    def __init__(self, connect: Any) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._writer = GroupCommitWriter(self._insert)

    def open(self) -> None:
        """Connect and apply the schema; raises while ClickHouse cannot be reached."""
        with self._lock:
            if self._client is None:
                client = self._connect()
                for statement in MIGRATIONS:
                    client.command(statement)
                self._client = client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise StoreUnavailable("the journey store is not connected yet", retry_after=1.0)
        return self._client

    def ping(self) -> None:
        self.client.command("SELECT 1")

    def write(self, tenant: str, events: Sequence[EventRecord]) -> int:
        """Insert `events` for `tenant`. Re-writing an event_id is harmless: reads see one row per event."""
        rows = [
            [
                tenant,
                e.event_id,
                e.type,
                e.name,
                e.channel,
                e.timestamp,
                e.sent_at,
                e.received_at,
                list(e.identifier_types),
                list(e.identifier_values),
                e.person_id,
                e.properties_json,
                e.context_json,
                e.text,
                e.revenue,
                e.revenue_currency,
                e.group_id,
                e.plan_violations_json,
                e.sentiment_score,
                e.original_timestamp,
            ]
            for e in events
        ]
        if rows:
            self._writer.write(rows)
        return len(rows)

    def _insert(self, rows: list[Sequence[Any]]) -> None:
        try:
            self.client.insert("events", rows, column_names=_COLUMNS)
        except ClickHouseError as exc:
            raise store_error(exc, "writing events") from exc

    def timeline(self, query: TimelineQuery, mapping: OverrideMapping = _NO_OVERRIDES) -> list[EventRecord]:
        """One page of `query`'s events, in its order, after its cursor, read through `mapping`: a person's
        timeline holds the events whose current person is that person, and every event's `person_id` is its
        current person."""
        person, parameters = current_person_sql(mapping)
        conditions = ["tenant_id = {tenant:String}"]
        parameters |= {"tenant": query.tenant, "limit": query.limit}
        if query.person_id:
            conditions.append(
                "person_id IN {stored_persons:Array(String)} AND current_person = {person:String}"
            )
            parameters["stored_persons"] = mapping.stored_persons_of(query.person_id)
            parameters["person"] = query.person_id
        if query.identifier is not None:
            conditions.append(IDENTIFIER_MATCH)
            parameters["identifier_type"], parameters["identifier_value"] = query.identifier
        if query.channels:
            conditions.append("channel IN {channels:Array(String)}")
            parameters["channels"] = list(query.channels)
        if query.event_names:
            conditions.append("name IN {names:Array(String)}")
            parameters["names"] = list(query.event_names)
        if query.start is not None:
            conditions.append("timestamp >= {start:DateTime64(6, 'UTC')}")
            parameters["start"] = query.start
        if query.end is not None:
            conditions.append("timestamp < {end:DateTime64(6, 'UTC')}")
            parameters["end"] = query.end
        direction = "ASC" if query.order is TimelineOrder.OLDEST_FIRST else "DESC"
        if query.after is not None:
            comparison = ">" if query.order is TimelineOrder.OLDEST_FIRST else "<"
            conditions.append(
                f"(toUnixTimestamp64Micro(timestamp), toString(event_id)) {comparison} "
                "({after_us:Int64}, {after_id:String})"
            )
            parameters["after_us"] = query.after.timestamp_us
            parameters["after_id"] = query.after.event_id
        # The mapping filters before LIMIT, so keyset paging stays exact. Only fixed fragments are
        # interpolated; every value travels as a bound parameter.
        columns = [
            f"{person} AS current_person" if c == "person_id" else c for c in _COLUMNS if c != "tenant_id"
        ]
        sql = (
            f"SELECT {', '.join(columns)} FROM events FINAL "  # noqa: S608
            f"WHERE {' AND '.join(conditions)} "
            f"ORDER BY timestamp {direction}, toString(event_id) {direction} LIMIT {{limit:UInt32}}"
        )
        try:
            result = self.client.query(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise store_error(exc, "reading the timeline") from exc
        return [_record(row) for row in result.result_rows]

    def erase_person(
        self,
        tenant: str,
        person_id: str,
        mapping: OverrideMapping,
        identifiers: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Erase every event that reads as `person_id` through `mapping`, and every event carrying one of
        `identifiers`; return how many there were.

        A lightweight DELETE masks the rows: it returns once the mask is written (lightweight_deletes_sync,
        on by default), and every later read skips them, so no tombstone table has to be consulted by every
        query, and events of the person written later are stored and read again as the contract says. The
        mask only hides rows until a merge drops them, at no set time, so an asynchronous APPLY DELETED MASK
        (ClickHouse's guidance for deletions that must reach the disk) rewrites the touched partitions in the
        background. Both run on chDB as on a server. Rows are deleted by event id: every copy of an erased
        event goes, also an older copy written under another person before a replay."""
        person, parameters = current_person_sql(mapping)
        parameters |= {
            "tenant": tenant,
            "person": person_id,
            "stored_persons": mapping.stored_persons_of(person_id),
        }
        try:
            rows = self.client.query(
                f"SELECT event_id, toYYYYMM(timestamp) FROM events FINAL WHERE tenant_id = {{tenant:String}} "  # noqa: S608
                f"AND person_id IN {{stored_persons:Array(String)}} AND {person} = {{person:String}}",
                parameters=parameters,
            ).result_rows
            if identifiers:
                found = {r[0] for r in rows}
                carrying = self.client.query(
                    "SELECT event_id, toYYYYMM(timestamp) FROM events FINAL "
                    "WHERE tenant_id = {tenant:String} AND hasAny("
                    "arrayZip(arrayMap(t -> toString(t), identifier_types), identifier_values), "
                    "{pairs:Array(Tuple(String, String))})",
                    parameters={"tenant": tenant, "pairs": [tuple(i) for i in identifiers]},
                ).result_rows
                rows = [*rows, *(r for r in carrying if r[0] not in found)]
            for start in range(0, len(rows), _ERASE_CHUNK):
                self.client.command(
                    "DELETE FROM events WHERE tenant_id = {tenant:String} AND event_id IN {ids:Array(UUID)}",
                    parameters={"tenant": tenant, "ids": [r[0] for r in rows[start : start + _ERASE_CHUNK]]},
                )
            for partition in sorted({int(r[1]) for r in rows}):
                self.client.command(
                    "ALTER TABLE events APPLY DELETED MASK IN PARTITION {partition:UInt32}",
                    parameters={"partition": partition},
                    settings={"mutations_sync": 0},
                )
        except ClickHouseError as exc:
            raise store_error(exc, "erasing a person's events") from exc
        return len(rows)


# ClickHouse error codes that mean "try again later" rather than "this statement is wrong".
TRANSIENT_ERROR_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        999,  # KEEPER_EXCEPTION
    }
)


def store_error(exc: ClickHouseError, action: str) -> Exception:
    """UNAVAILABLE (retryable, details only in the log) for connection trouble and transient server
    errors; any other error is a defect on our side and stays itself, so callers get INTERNAL."""
    code = getattr(exc, "code", None)
    if isinstance(exc, OperationalError) or code in TRANSIENT_ERROR_CODES:
        log.warning("clickhouse.transient_error", action=action, code=code, error=str(exc))
        reason = getattr(exc, "name", None) or "connection failed"
        return StoreUnavailable(f"{action} failed in ClickHouse ({reason}); retry", retry_after=1.0)
    return exc


def _record(row: Sequence[Any]) -> EventRecord:
    (event_id, type_, name, channel, timestamp, sent_at, received_at, id_types, id_values, person_id,
     properties, context, text, revenue, revenue_currency, group_id, plan_violations,
     sentiment_score, original_timestamp) = row  # fmt: skip
    return EventRecord(
        event_id=str(event_id),
        type=type_,
        name=name,
        channel=channel,
        timestamp=_as_utc(timestamp),
        sent_at=_as_utc(sent_at) if sent_at is not None else None,
        received_at=_as_utc(received_at),
        identifier_types=tuple(id_types),
        identifier_values=tuple(id_values),
        person_id=person_id,
        properties_json=properties,
        context_json=context,
        text=text,
        revenue=revenue,
        revenue_currency=revenue_currency,
        group_id=group_id,
        plan_violations_json=plan_violations,
        sentiment_score=sentiment_score,
        original_timestamp=_as_utc(original_timestamp) if original_timestamp is not None else None,
    )


def cursor_after(record: EventRecord) -> TimelineCursor:
    """The cursor that continues a timeline after `record`."""
    return TimelineCursor(to_micros(record.timestamp), record.event_id)
