"""Versioned migrations: applied once in order, the pre-versioning layout converted, a newer schema refused;
and the cluster DDL rendered from the same migrations, checked by ClickHouse's own parser."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf import struct_pb2

from tests.journeys.conftest import new_person, stored_event
from wayline.event.v1 import event_pb2
from wayline_journeys.converters import events_to_columns, record_to_event
from wayline_journeys.events import TimelineQuery
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.columns import arrow_table
from wayline_journeys.store.migrations import SchemaTooNew, migrate
from wayline_journeys.store.schema import ANCHOR_PARTITIONS, MIGRATIONS, events_ddl
from wayline_journeys.store.topology import Topology

# The events table as releases before versioning created it: keyed by day, partitioned by month.
_LEGACY_EVENTS = """
CREATE TABLE events
(
    tenant_id LowCardinality(String), event_id UUID, type LowCardinality(String), name String,
    channel LowCardinality(String), timestamp DateTime64(6, 'UTC'), sent_at Nullable(DateTime64(6, 'UTC')),
    received_at DateTime64(6, 'UTC'), identifier_types Array(LowCardinality(String)),
    identifier_values Array(String), person_id String, properties String, context String, text String,
    revenue Nullable(Decimal(38, 9)), revenue_currency LowCardinality(String), group_id String,
    plan_violations String, sentiment_score Nullable(Float64)
)
ENGINE = ReplacingMergeTree(received_at) PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant_id, toDate(timestamp), event_id)
"""


def applied_versions(client: Client) -> list[int]:
    return [
        int(v)
        for (v,) in client.query("SELECT version FROM schema_migrations FINAL ORDER BY version").result_rows
    ]


def test_a_fresh_database_records_every_version_once(fresh_database: Callable[[], Client]) -> None:
    client = fresh_database()
    assert migrate(client, Topology(), MIGRATIONS) == list(range(1, len(MIGRATIONS) + 1))
    assert migrate(client, Topology(), MIGRATIONS) == []  # a restart applies nothing
    assert applied_versions(client) == list(range(1, len(MIGRATIONS) + 1))


def test_the_pre_versioning_layout_is_converted_with_its_rows(fresh_database: Callable[[], Client]) -> None:
    client = fresh_database()
    client.command(_LEGACY_EVENTS)
    client.command(
        "INSERT INTO events (tenant_id, event_id, type, name, channel, timestamp, received_at, "
        "identifier_types, identifier_values, person_id, properties, context, text, revenue_currency, "
        "group_id, plan_violations) "
        "SELECT 'acme', generateUUIDv4(number), 'track', 'Viewed', 'web', "
        "toDateTime64('2025-12-31 23:00:00', 6, 'UTC') + toIntervalHour(number), now64(6), ['user_id'], "
        "['u-' || toString(number % 3)], 'p-' || toString(number % 3), '{}', '{}', '', '', '', '[]' "
        "FROM numbers(30)"
    )
    store = JourneyStore(fresh_database)
    store.open()
    try:
        keys = store.client.query(
            "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
        ).result_rows
        assert keys == [("tenant_id, anchor, event_id",)]
        assert int(store.client.query("SELECT count() FROM events").result_rows[0][0]) == 30
        timeline = store.timeline(TimelineQuery(tenant="acme", identifier=("user_id", "u-1")))
        # The timeline of u-1's holder (p-1, ten events), found through the backfilled identifier lookup.
        assert len(timeline) == 10
        assert applied_versions(store.client) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        store.close()


# What version 9 added to `events`. Version 1 creates the table from today's column list, so a store migrated
# to 8 by today's code has them already; dropping them gives the table that release 8 left behind.
_VERSION_9_COLUMNS = ("integrations", "previous_identifier_type", "previous_identifier_value")


def event_columns(client: Client, table: str) -> set[tuple[str, str, str]]:
    rows = client.query(
        "SELECT name, type, compression_codec FROM system.columns "
        "WHERE database = currentDatabase() AND table = {table:String}",
        parameters={"table": table},
    ).result_rows
    return {(str(name), str(type_), str(codec)) for name, type_, codec in rows}


def test_a_store_from_version_8_keeps_its_events_and_takes_the_new_fields(
    fresh_database: Callable[[], Client],
) -> None:
    client = fresh_database()
    migrate(client, Topology(), MIGRATIONS[:8])
    client.command(f"ALTER TABLE events {', '.join(f'DROP COLUMN {c}' for c in _VERSION_9_COLUMNS)}")
    person = new_person()
    old = stored_event(person, ("user_id", "u-1"), minute=0)
    # Written as release 8's writer wrote it: every column it knew, none of version 9's.
    client.insert_arrow(
        "events", arrow_table("acme", events_to_columns([old])).drop_columns(_VERSION_9_COLUMNS)
    )

    store = JourneyStore(fresh_database)
    store.open()  # migrates to the newest version
    try:
        assert applied_versions(store.client) == list(range(1, len(MIGRATIONS) + 1))
        new = stored_event(person, ("user_id", "u-1"), ("anonymous_id", "a-1"), minute=1)
        new.type = event_pb2.EVENT_TYPE_ALIAS
        new.integrations.update({"All": False, "Intercom": True})
        new.previous_identifier.CopyFrom(event_pb2.Identifier(type="anonymous_id", value="a-1"))
        new.context.traits.update({"plan": "pro"})
        new.context.page.category = "Docs"
        store.write("acme", events_to_columns([new]))

        read = [record_to_event(r) for r in store.timeline(TimelineQuery(tenant="acme", person_id=person))]
        old.properties.CopyFrom(struct_pb2.Struct())  # absent reads back as present and empty, as always
        new.properties.CopyFrom(struct_pb2.Struct())
        assert read == [old, new]
        assert not read[0].HasField("integrations")
        assert not read[0].HasField("previous_identifier")

        # The migrated table holds the columns, types and codecs that a new one does.
        store.client.command(events_ddl(Topology(), "events_new"))
        assert event_columns(store.client, "events") == event_columns(store.client, "events_new")
    finally:
        store.close()


def _page_view(person: str, path: str, minute: int) -> event_pb2.Event:
    event = stored_event(person, ("user_id", "u-1"), minute=minute)
    event.type = event_pb2.EVENT_TYPE_PAGE
    event.context.page.path = path
    return event


def test_a_store_from_version_15_takes_the_page_path_of_the_events_it_holds(
    fresh_database: Callable[[], Client],
) -> None:
    client = fresh_database()
    migrate(client, Topology(), MIGRATIONS[:15])
    client.command("ALTER TABLE events DROP COLUMN page_path")  # the table release 15 left behind
    person = new_person()
    track = stored_event(person, ("user_id", "u-1"), minute=0)
    written_then = events_to_columns([track, _page_view(person, "/cart", 1)])
    client.insert_arrow("events", arrow_table("acme", written_then))

    store = JourneyStore(fresh_database)
    store.open()  # migrates to the newest version
    try:
        assert applied_versions(store.client) == list(range(1, len(MIGRATIONS) + 1))
        store.write("acme", events_to_columns([_page_view(person, "/checkout", 2)]))
        rows = store.client.query(
            "SELECT type, page_path FROM events WHERE tenant_id = 'acme' ORDER BY timestamp"
        ).result_rows
        assert [tuple(r) for r in rows] == [("track", ""), ("page", "/cart"), ("page", "/checkout")]
        # Once version 16's rewrite is done (in the background) every part holds the column, the old one too.
        deadline = time.monotonic() + 30
        pending = "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done"
        while store.client.query(pending).result_rows[0][0]:
            assert time.monotonic() < deadline, "the page paths are still being written"
            time.sleep(0.05)
        holding = store.client.query(
            "SELECT (SELECT count() FROM system.parts_columns WHERE database = currentDatabase() "
            "AND table = 'events' AND column = 'page_path' AND active), (SELECT count() FROM system.parts "
            "WHERE database = currentDatabase() AND table = 'events' AND active)"
        ).result_rows
        assert holding[0][0] == holding[0][1] > 0
        store.client.command(events_ddl(Topology(), "events_new"))
        assert event_columns(store.client, "events") == event_columns(store.client, "events_new")
    finally:
        store.close()


def test_a_schema_newer_than_the_code_is_refused(fresh_database: Callable[[], Client]) -> None:
    client = fresh_database()
    migrate(client, Topology(), MIGRATIONS)
    client.insert(
        "schema_migrations",
        [[len(MIGRATIONS) + 1, "from a newer release"]],
        column_names=["version", "description"],
    )
    store = JourneyStore(fresh_database)
    with pytest.raises(SchemaTooNew, match=f"version {len(MIGRATIONS) + 1}"):
        store.open()


def cluster_statements(topology: Topology) -> list[str]:
    return [s for m in MIGRATIONS for s in m.steps(topology) if isinstance(s, str)]


def test_cluster_ddl_is_replicated_distributed_and_parses(fresh_database: Callable[[], Client]) -> None:
    statements = cluster_statements(Topology(cluster="wayline_cluster", database="wayline"))
    client = fresh_database()
    for statement in statements:
        # ClickHouse's parser, without running it: chDB has no cluster to run ON CLUSTER against.
        formatted = client.query(
            "SELECT formatQuery({sql:String})", parameters={"sql": statement}
        ).result_rows
        assert formatted[0][0]
        assert "ON CLUSTER wayline_cluster" in formatted[0][0]
    text = "\n".join(statements)
    assert re.search(
        r"CREATE TABLE IF NOT EXISTS events_local ON CLUSTER `wayline_cluster`.*"
        r"ENGINE = ReplicatedReplacingMergeTree"
        r"\('/clickhouse/tables/\{shard\}/wayline/events', '\{replica\}', received_at\)",
        text,
        re.DOTALL,
    )
    assert (
        "CREATE TABLE IF NOT EXISTS events ON CLUSTER `wayline_cluster` AS events_local ENGINE = Distributed("
        in text
    )
    # Tables every shard joins locally are whole on every node.
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/all/wayline/person_overrides', "
        "'{shard}-{replica}', version)" in text
    )
    assert "TO person_anchors_local AS SELECT DISTINCT tenant_id, person_id, anchor FROM events_local" in text
    # Columns added after version 1 go to the local tables and to the Distributed one, which lists them too.
    for table in ("events_local", "events"):
        (added,) = [t for t in statements if t.startswith(f"ALTER TABLE {table} ON CLUSTER") and "integ" in t]
        assert all(f"ADD COLUMN IF NOT EXISTS {c} " in added for c in _VERSION_9_COLUMNS)


def test_local_ddl_names_no_cluster() -> None:
    text = "\n".join(cluster_statements(Topology()))
    assert "ON CLUSTER" not in text
    assert "Replicated" not in text
    assert "Distributed" not in text


@pytest.mark.skipif(
    not (os.environ.get("WAYLINE_CLICKHOUSE_URL") and os.environ.get("WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER")),
    reason="set WAYLINE_CLICKHOUSE_URL and WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER to migrate a real cluster",
)
def test_the_cluster_schema_applies_on_a_server(tmp_path: object) -> None:
    database = f"test_{uuid.uuid4().hex[:8]}"
    topology = Topology(cluster=os.environ["WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER"], database=database)
    # The database is made ON CLUSTER by the connection itself: every host has it before the tables' DDL.
    client = connect_clickhouse(os.environ["WAYLINE_CLICKHOUSE_URL"], database, tmp_path, topology.cluster)  # type: ignore[arg-type]
    try:
        migrate(client, topology, MIGRATIONS)
        store = JourneyStore(lambda: client, topology)
        store.open()
        assert store.timeline(TimelineQuery(tenant="acme", person_id="nobody")) == []
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} ON CLUSTER `{topology.cluster}`")


def store_of_eight_partitions(client: Client) -> None:
    """A store as versions 1 to 11 made it: events in eight anchor partitions, eight parts per INSERT."""
    client.command(events_ddl(Topology()).replace(f"anchor % {ANCHOR_PARTITIONS}", "anchor % 8"))
    migrate(client, Topology(), MIGRATIONS[:11])


def test_a_store_of_eight_partitions_is_rebuilt_in_four_with_its_rows(
    fresh_database: Callable[[], Client],
) -> None:
    client = fresh_database()
    store_of_eight_partitions(client)
    person = new_person()
    kept = [stored_event(person, ("user_id", "u-1"), minute=m) for m in range(5)]
    erased = stored_event(person, ("user_id", "u-1"), minute=9)
    client.insert_arrow("events", arrow_table("acme", events_to_columns([*kept, erased])))
    client.command("DELETE FROM events WHERE event_id = {id:UUID}", parameters={"id": erased.event_id})

    store = JourneyStore(fresh_database)
    store.open()  # applies version 12
    try:
        assert applied_versions(store.client) == list(range(1, len(MIGRATIONS) + 1))
        key = store.client.query(
            "SELECT partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
        ).result_rows
        assert key == [(f"anchor % {ANCHOR_PARTITIONS}",)]
        assert "events_rebuild" not in {t for (t,) in store.client.query("SHOW TABLES").result_rows}
        read = store.timeline(TimelineQuery(tenant="acme", person_id=person))
        assert [r.event_id for r in read] == [e.event_id for e in kept]  # the erased one stays erased

        # The materialized views followed the swap: a new identifier's event fills the lookups, so the
        # person's timeline is found by it.
        later = stored_event(person, ("user_id", "u-1"), ("email", "p@example.com"), minute=20)
        store.write("acme", events_to_columns([later]))
        by_email = store.timeline(TimelineQuery(tenant="acme", identifier=("email", "p@example.com")))
        assert [r.event_id for r in by_email] == [*(e.event_id for e in kept), later.event_id]
    finally:
        store.close()


class _Crash(Exception):
    pass


class _WriterBeforeTheSwap:
    """A client whose `events` gets one more write between the rebuild's copy and its swap, as a writer
    still running during the migration would make; with `crash_after_swap`, the process dies right after
    the swap."""

    def __init__(self, client: Client, write: Callable[[], None], crash_after_swap: bool) -> None:
        self._client = client
        self._write = write
        self._crash_after_swap = crash_after_swap
        self._swapped = False

    def command(self, sql: str, **kwargs: object) -> object:
        if sql.startswith("EXCHANGE TABLES events"):
            self._write()
        elif self._swapped and self._crash_after_swap:
            raise _Crash
        result = self._client.command(sql, **kwargs)  # type: ignore[arg-type]
        self._swapped = self._swapped or sql.startswith("EXCHANGE TABLES events")
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


@pytest.mark.parametrize("crash_after_swap", [False, True])
def test_the_rebuild_keeps_an_event_written_while_it_copied(
    fresh_database: Callable[[], Client], crash_after_swap: bool
) -> None:
    client = fresh_database()
    store_of_eight_partitions(client)
    person = new_person()
    copied = stored_event(person, ("user_id", "u-1"), minute=0)
    late = stored_event(person, ("user_id", "u-1"), minute=1)
    client.insert_arrow("events", arrow_table("acme", events_to_columns([copied])))

    def write_late() -> None:
        client.insert_arrow("events", arrow_table("acme", events_to_columns([late])))

    migrating = _WriterBeforeTheSwap(client, write_late, crash_after_swap)
    up_to_12 = MIGRATIONS[:12]
    if crash_after_swap:
        with pytest.raises(_Crash):
            migrate(migrating, Topology(), up_to_12)  # type: ignore[arg-type]
        assert migrate(client, Topology(), up_to_12) == [12]  # the restart finishes the rebuild
    else:
        assert migrate(migrating, Topology(), up_to_12) == [12]  # type: ignore[arg-type]
    assert "events_rebuild" not in {t for (t,) in client.query("SHOW TABLES").result_rows}
    ids = client.query("SELECT toString(event_id) FROM events FINAL ORDER BY timestamp").result_rows
    assert [i for (i,) in ids] == [copied.event_id, late.event_id]
