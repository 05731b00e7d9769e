"""The journey tables, as versioned migrations (see migrations.py; layout and dedup: ADR 0011).

Add a version at the end for every change; never edit an applied one (databases that applied it will not
apply it again).
"""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from wayline_journeys.store.columns import INSERT_COLUMN_NAMES, column_definitions
from wayline_journeys.store.decision_tables import decision_tables
from wayline_journeys.store.migrations import Migration, Step
from wayline_journeys.store.person_timelines import person_timeline_tables, person_timelines_in_finer_granules
from wayline_journeys.store.segment_tables import segment_tables
from wayline_journeys.store.topology import Topology

__all__ = [
    "ANCHOR",
    "ANCHOR_PARTITIONS",
    "MIGRATIONS",
    "OVERRIDE_CURSOR_COLUMNS",
    "PAGE_PATH",
    "PERSON_OVERRIDE_COLUMNS",
    "events_ddl",
    "lookup_rebuilds",
]

# person_overrides, one list for the DDL and the inserts. identifier_type and identifier_value are empty for
# a person-wide override; the key is (tenant_id, person_id, identifier_type, identifier_value).
PERSON_OVERRIDE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("person_id", "String"),
    ("identifier_type", "LowCardinality(String)"),
    ("identifier_value", "String"),
    ("override_person_id", "String"),
    ("version", "UInt64"),
    ("merge_id", "String"),
    ("create_time", "Nullable(DateTime64(6, 'UTC'))"),
    ("recorded_at", "DateTime64(6, 'UTC')"),
)

# override_cursors: how far journeys has applied identity's override feed, per tenant (one row per advance).
OVERRIDE_CURSOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("version", "UInt64"),
    ("recorded_at", "DateTime64(6, 'UTC')"),
)

# The anchor of an event: a hash of its first identifier (of its id when it has none). It is part of the
# event's payload, so every write of one event (a retry with another timestamp, a replay after a merge that
# gives it another person) has the same anchor, and one person's events sit in the few ranges of their
# devices and ids. ADR 0011 says why this, and not the person or the day, keys the table.
ANCHOR = (
    "if(empty(identifier_values), cityHash64(toString(event_id)), "
    "cityHash64(toString(identifier_types[1]), identifier_values[1]))"
)
# A page event's path (`context.page.path`; empty on other events), kept as a column at write time: a path
# analysis labels page steps by it, and extracting it from every page event's context JSON took a tenth of
# that statement on the bench's 10M events (ADR 104). Old parts compute it on read until version 16's
# MATERIALIZE COLUMN has rewritten them.
PAGE_PATH = "JSONExtractString(context, 'page', 'path')"
# Four partitions by anchor (versions 1 to 11: eight). ClickHouse makes a part per partition on every INSERT,
# each with its materialized views' work and merges, while a timeline reads every part of its anchor's
# partition: fewer partitions, cheaper writes and more parts per read. ADR 0011 has the figures.
ANCHOR_PARTITIONS = 4


def events_ddl(topology: Topology, table: str = "events") -> str:
    """Events deduplicated by (tenant_id, anchor, event_id): ReplacingMergeTree keeps the last received copy
    of an event, and reads use FINAL (ADR 0011). Partitioned by the anchor, so both copies of an event share
    a partition."""
    return f"""
    CREATE TABLE IF NOT EXISTS {topology.local(table)}{topology.on_cluster}
    (
        {column_definitions()},
        anchor UInt64 MATERIALIZED {ANCHOR},
        page_path String MATERIALIZED {PAGE_PATH},
        INDEX idx_identifier_values identifier_values TYPE bloom_filter(0.01) GRANULARITY 4
    )
    ENGINE = {topology.engine(table, "ReplacingMergeTree", "received_at")}
    PARTITION BY anchor % {ANCHOR_PARTITIONS}
    ORDER BY (tenant_id, anchor, event_id)
    """


def _events(topology: Topology) -> Sequence[Step]:
    return [events_ddl(topology), *topology.distributed("events", ANCHOR)]


def _events_tables(topology: Topology) -> list[str]:
    """The tables an ALTER of `events`' columns names: the local table, and on a cluster the Distributed one,
    which names its columns too."""
    return [topology.local("events"), *(["events"] if topology.clustered else [])]


def _original_timestamp(topology: Topology) -> Sequence[Step]:
    # Issue 6: the sender's timestamp before ingest's clock-skew correction. Present in events_ddl already;
    # this adds it to tables created before it.
    tables = _events_tables(topology)
    return [
        f"ALTER TABLE {t}{topology.on_cluster} ADD COLUMN IF NOT EXISTS original_timestamp "
        "Nullable(DateTime64(6, 'UTC'))"
        for t in tables
    ]


def _integrations_and_previous_identifier(topology: Topology) -> Sequence[Step]:
    # Segment's `integrations` and an alias's previous id, which ingest passed on and the store dropped.
    # Present in events_ddl already; this adds them to tables created before them. The types are written out,
    # not looked up in columns.py, so this version means the same whatever later versions change there
    # (test_schema.py checks that a migrated table and a new one end up alike).
    columns = (
        ("integrations", "String CODEC(ZSTD(3))"),
        ("previous_identifier_type", "LowCardinality(String)"),
        ("previous_identifier_value", "String"),
    )
    additions = ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {type_}" for name, type_ in columns)
    tables = _events_tables(topology)
    return [f"ALTER TABLE {t}{topology.on_cluster} {additions}" for t in tables]


def _page_path(topology: Topology) -> Sequence[Step]:
    # Present in events_ddl already; this adds it to tables created before it, and writes it into their
    # parts in the background (reads compute it for a part until then).
    tables = _events_tables(topology)
    return [
        *(
            f"ALTER TABLE {t}{topology.on_cluster} ADD COLUMN IF NOT EXISTS page_path String "
            f"MATERIALIZED {PAGE_PATH}"
            for t in tables
        ),
        f"ALTER TABLE {topology.local('events')}{topology.on_cluster} MATERIALIZE COLUMN page_path",
    ]


def _person_overrides(topology: Topology) -> Sequence[Step]:
    # PostHog's person_overrides design: one row per applied version, ReplacingMergeTree keeps the highest
    # version per key in the background, and reads take argMax(..., version) per key instead of FINAL, so
    # they are exact before merges too. Small (one row per merge, unmerge or split), so no partitions, and
    # on a cluster every node holds all of it; the bloom filter serves "which persons point to P".
    columns = ", ".join(f"{name} {type_}" for name, type_ in PERSON_OVERRIDE_COLUMNS)
    return [
        f"""
        CREATE TABLE IF NOT EXISTS person_overrides{topology.on_cluster}
        (
            {columns},
            INDEX idx_override_person_id override_person_id TYPE bloom_filter(0.01) GRANULARITY 4
        )
        ENGINE = {topology.engine("person_overrides", "ReplacingMergeTree", "version", sharded=False)}
        ORDER BY (tenant_id, person_id, identifier_type, identifier_value)
        """
    ]


def _override_cursors(topology: Topology) -> Sequence[Step]:
    # The override feed's cursor per tenant (see follower.py): the highest version of identity's feed that
    # journeys has applied, every version below it included. Kept apart from person_overrides because that
    # table's max(version) goes down when an erasure deletes overrides. Reads take max(version) per tenant.
    columns = ", ".join(f"{name} {type_}" for name, type_ in OVERRIDE_CURSOR_COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS override_cursors{topology.on_cluster} ({columns}) "
        f"ENGINE = {topology.engine('override_cursors', 'ReplacingMergeTree', 'version', sharded=False)} "
        "ORDER BY tenant_id"
    ]


def _lifecycle_models(topology: Topology) -> Sequence[Step]:
    # Each tenant's default lifecycle model (store/lifecycle_models.py), the LifecycleModel's stages as
    # protobuf JSON; one row per revision, and reads take the newest with FINAL.
    return [
        f"""
        CREATE TABLE IF NOT EXISTS lifecycle_models{topology.on_cluster}
        (
            tenant_id LowCardinality(String),
            revision UInt64,
            model String,
            update_time DateTime64(6, 'UTC')
        )
        ENGINE = {topology.engine("lifecycle_models", "ReplacingMergeTree", "revision", sharded=False)}
        ORDER BY tenant_id
        """
    ]


def _erased_persons(topology: Topology) -> Sequence[Step]:
    # The persons an erasure took (store/erased_persons.py): an event stamped with one of them that arrives
    # after the erasure is not stored. A row per person, kept for good: a person id is random, never given
    # again, and says nothing about the person. Small, so on a cluster every node holds all of it.
    return [
        f"""
        CREATE TABLE IF NOT EXISTS erased_persons{topology.on_cluster}
        (
            tenant_id LowCardinality(String),
            person_id String,
            erased_at DateTime64(6, 'UTC')
        )
        ENGINE = {topology.engine("erased_persons", "ReplacingMergeTree", sharded=False)}
        ORDER BY (tenant_id, person_id)
        """
    ]


def _key_events_by_anchor(client: Client, topology: Topology) -> None:
    """Re-key a table created before version 6 ((tenant, day, event_id), partitioned by month) into the
    anchored layout. Crash-safe: the copy is swapped in atomically (EXCHANGE), and a rerun drops leftovers."""
    columns = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}",
        parameters={"table": topology.local("events")},
    ).result_rows
    if any(name == "anchor" for (name,) in columns):
        client.command("DROP TABLE IF EXISTS events_keyed")  # the pre-version-6 rows, after an exchange
        return
    if topology.clustered:
        raise RuntimeError("clusters start with the anchored layout; this events table predates it")
    # Only the columns the old table has (versions 1 to 5 gave it those): the new table is made from today's
    # column list, and the columns later versions add get their defaults, as those versions give old rows.
    present = {name for (name,) in columns}
    names = ", ".join(name for name in INSERT_COLUMN_NAMES if name in present)
    client.command("DROP TABLE IF EXISTS events_keyed")
    client.command(events_ddl(topology, "events_keyed"))
    client.command(f"INSERT INTO events_keyed ({names}) SELECT {names} FROM events")
    client.command("EXCHANGE TABLES events AND events_keyed")
    client.command("DROP TABLE events_keyed")


# The anchor lookups: which anchors hold a person's (stored person id) or an identifier's events. The
# timeline and erasure read these first and then only those ranges of `events`. Materialized views fill them
# on every insert; rows may outlive their events (they only widen a lookup) until an erasure rebuilds the
# rows of the anchors it touched. table → (key columns, sort key, the SELECT over events that fills it).
_LOOKUPS: dict[str, tuple[str, str, str]] = {
    "person_anchors": (
        "person_id String",
        "person_id",
        "SELECT DISTINCT tenant_id, person_id, anchor FROM {events} WHERE {where}",
    ),
    "identifier_anchors": (
        "identifier_type LowCardinality(String), identifier_value String",
        "identifier_value, identifier_type",
        "SELECT DISTINCT tenant_id, identifier_type, identifier_value, anchor FROM {events} "
        "ARRAY JOIN identifier_types AS identifier_type, identifier_values AS identifier_value WHERE {where}",
    ),
}


def _anchor_lookups(topology: Topology) -> Sequence[Step]:
    steps: list[Step] = []
    events = topology.local("events")
    for table, (key, order, select) in _LOOKUPS.items():
        fill = select.format(events=events, where="true")
        steps += [
            f"CREATE TABLE IF NOT EXISTS {topology.local(table)}{topology.on_cluster} "
            f"(tenant_id LowCardinality(String), {key}, anchor UInt64) "
            f"ENGINE = {topology.engine(table, 'ReplacingMergeTree')} ORDER BY (tenant_id, {order}, anchor)",
            *topology.distributed(table, "anchor"),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {topology.local(table)}_mv{topology.on_cluster} "
            f"TO {topology.local(table)} AS {fill}",
            _backfill(topology.local(table), fill),
        ]
    return steps


def _backfill(table: str, fill: str) -> Step:
    def backfill(client: Client, topology: Topology) -> None:
        if not client.query(f"SELECT count() FROM {table}").result_rows[0][0]:
            client.command(f"INSERT INTO {table} {fill}")

    return backfill


def lookup_rebuilds(topology: Topology) -> list[str]:
    """Statements that rebuild the lookup rows of the anchors {anchors:Array(UInt64)} of tenant
    {tenant:String} from the events that remain (after an erasure)."""
    statements = []
    scope = "tenant_id = {tenant:String} AND anchor IN {anchors:Array(UInt64)}"
    for table, (_, _, select) in _LOOKUPS.items():
        local = topology.local(table)
        statements += [
            f"DELETE FROM {local}{topology.on_cluster} WHERE {scope}",
            f"INSERT INTO {local} {select.format(events=topology.local('events'), where=scope)}",
        ]
    return statements


def _backfill_flag(topology: Topology) -> Sequence[Step]:
    # Issue 10: whether an event came in a backfill batch (imported history), for point-in-time reads.
    # Present in events_ddl already; this adds it to tables created before it.
    tables = _events_tables(topology)
    return [f"ALTER TABLE {t}{topology.on_cluster} ADD COLUMN IF NOT EXISTS backfill Bool" for t in tables]


def _events_in_four_partitions(client: Client, topology: Topology) -> None:
    """Rebuild an events table of eight anchor partitions (versions 1 to 11) into ANCHOR_PARTITIONS.

    ClickHouse cannot change a table's partition key in place, so the rows are copied into a new table that
    is then swapped in (EXCHANGE, atomic): the materialized views that fill the lookups, the segments' dirty
    persons and the decision events name `events` and follow the swap. Rows written while the copy ran land
    in the old table, whose merges stop meanwhile; its parts made since the copy began are copied again
    after the swap (duplicates collapse like any retried event). Deleted rows (an erasure's mask) are not
    copied. A rerun after a crash before the swap drops the copy and starts again; after the swap, it
    copies the whole old table again before dropping it. On a cluster the layout stays as it is: both
    layouts read and dedup alike, and the rebuild of replicated shards is an operator's step
    (docs/journeys.md)."""
    if topology.clustered:
        return
    names = ", ".join(INSERT_COLUMN_NAMES)
    keys: dict[str, str] = {
        str(name): str(key)
        for name, key in client.query(
            "SELECT name, partition_key FROM system.tables "
            "WHERE database = currentDatabase() AND name IN ('events', 'events_rebuild')"
        ).result_rows
    }
    current = keys.get("events", "") == f"anchor % {ANCHOR_PARTITIONS}"
    if "events_rebuild" in keys and current:
        # Swapped, then interrupted: the leftover is the old table, and rows written late may be only there.
        client.command(f"INSERT INTO events ({names}) SELECT {names} FROM events_rebuild")
    client.command("DROP TABLE IF EXISTS events_rebuild")
    if current:
        return
    # No merges in the old table from here: the parts made after `started` are then only new writes, not
    # merged copies of rows already copied.
    client.command("SYSTEM STOP MERGES events")
    try:
        started = int(client.query("SELECT toUnixTimestamp(now())").result_rows[0][0])
        client.command(events_ddl(topology, "events_rebuild"))
        client.command(f"INSERT INTO events_rebuild ({names}) SELECT {names} FROM events")
        client.command("EXCHANGE TABLES events AND events_rebuild")
    except BaseException:
        client.command("SYSTEM START MERGES events")  # still the old table: it goes on serving
        raise
    client.command(
        f"INSERT INTO events ({names}) SELECT {names} FROM events_rebuild WHERE _part IN "
        "(SELECT name FROM system.parts WHERE database = currentDatabase() AND table = 'events_rebuild' "
        "AND active AND toUnixTimestamp(modification_time) >= {started:Int64})",
        parameters={"started": started},
    )
    client.command("DROP TABLE events_rebuild")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events", _events),
    Migration(2, "events.original_timestamp", _original_timestamp),
    Migration(3, "person_overrides", _person_overrides),
    Migration(4, "override_cursors", _override_cursors),
    Migration(5, "lifecycle_models", _lifecycle_models),
    Migration(6, "events keyed by anchor", lambda topology: [_key_events_by_anchor]),
    Migration(7, "person and identifier anchors", _anchor_lookups),
    Migration(8, "segments: definitions, memberships, changes, status, dirty persons", segment_tables),
    Migration(9, "events.integrations, events.previous_identifier", _integrations_and_previous_identifier),
    Migration(10, "events.backfill", _backfill_flag),
    Migration(11, "decision_events: the decision service's events by decision id", decision_tables),
    Migration(12, "events in four anchor partitions", lambda topology: [_events_in_four_partitions]),
    Migration(13, "erased_persons: the persons erasures took", _erased_persons),
    Migration(
        14, "person_timelines: each person's events in time order, for the timeline", person_timeline_tables
    ),
    Migration(
        15,
        "person_timelines in granules of 1,024 rows",
        lambda topology: [person_timelines_in_finer_granules],
    ),
    Migration(16, "events.page_path: a page event's path, kept at write time", _page_path),
)
