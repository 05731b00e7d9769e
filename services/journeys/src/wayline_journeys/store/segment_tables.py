"""The segments read model's tables, one column list each (the DDL and the inserts derive from it), and the
migration steps that create them (schema.py lists them as one version).

- `segments`: the definitions, one row per write (ReplacingMergeTree(version) keeps the newest per id; reads
  use FINAL, the table is small); `refers` lists the segments its condition refers to. A deleted segment is
  a row with `deleted` set; `uid` names one lifetime of an id, so a segment created again under a deleted id
  starts with no members and no status.
- `segment_memberships`: the current membership, one row per (segment lifetime, person) and change
  (ReplacingMergeTree(sequence)); reads take argMax(member, sequence), exact before merges.
- `segment_membership_changes`: the feed of entries and exits by tenant-wide sequence, kept 30 days.
- `segment_status`: each segment's state (a row when it changes) and each tenant's freshness (segment uid '',
  a row per pass), read with argMax by recorded_at.
- `segment_dirty`: which stored persons got events or overrides when, stamped by ClickHouse's clock as the
  rows are inserted (materialized views on `events` and `person_overrides`), kept one day. The evaluator
  reads it to find the persons to evaluate again: every write path is covered (any replica, replays, events
  delivered late with an old `received_at`), and no writer has to remember to report anything.

Every table but the lookups of `events` is small or bounded, so on a cluster each is replicated whole to
every node (like person_overrides), and the membership predicate joins it locally on every shard.
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline_journeys.store.migrations import Step
from wayline_journeys.store.topology import Topology

__all__ = [
    "CHANGE_COLUMNS",
    "CHANGE_RETENTION_DAYS",
    "DIRTY_COLUMNS",
    "MEMBERSHIP_COLUMNS",
    "SEGMENT_COLUMNS",
    "STATUS_COLUMNS",
    "names",
    "segment_tables",
]

_TIME = "DateTime64(6, 'UTC')"

SEGMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("segment_id", "String"),
    ("uid", "String"),
    ("version", "UInt64"),
    ("revision", "UInt64"),
    ("condition_revision", "UInt64"),
    ("display_name", "String"),
    ("description", "String"),
    ("condition", "String"),
    ("refers", "Array(String)"),
    ("create_time", _TIME),
    ("update_time", _TIME),
    ("deleted", "UInt8"),
)
MEMBERSHIP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("segment_uid", "String"),
    ("segment_id", "String"),
    ("person_id", "String"),
    ("member", "UInt8"),
    ("enter_time", _TIME),
    ("sequence", "UInt64"),
)
CHANGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("sequence", "UInt64"),
    ("segment_uid", "String"),
    ("segment_id", "String"),
    ("person_id", "String"),
    ("change_type", "UInt8"),
    ("change_time", _TIME),
)
STATUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("segment_uid", "String"),
    ("condition_revision", "UInt64"),
    ("state", "UInt8"),
    ("data_as_of", f"Nullable({_TIME})"),
    ("windows_as_of", f"Nullable({_TIME})"),
    ("full_evaluation_time", f"Nullable({_TIME})"),
    ("error_message", "String"),
    ("recorded_at", _TIME),
)
DIRTY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "LowCardinality(String)"),
    ("person_id", "String"),
    ("stamped_at", _TIME),
)
CHANGE_RETENTION_DAYS = 30
"""How long the change feed keeps a change; an older cursor gets CURSOR_EXPIRED."""
_DIRTY_RETENTION_DAYS = 1  # the evaluator re-evaluates everything at start, so it never needs older stamps


def names(columns: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(name for name, _ in columns)


def _table(
    topology: Topology,
    table: str,
    columns: Sequence[tuple[str, str]],
    engine: str,
    *,
    order: str,
    ttl: str = "",
    indexes: Sequence[str] = (),
) -> str:
    kind, _, args = engine.partition("(")
    definitions = ", ".join([*(f"{name} {type_}" for name, type_ in columns), *indexes])
    return (
        f"CREATE TABLE IF NOT EXISTS {table}{topology.on_cluster} ({definitions}) "
        f"ENGINE = {topology.engine(table, kind, args.rstrip(')'), sharded=False)} ORDER BY {order}"
        + (f" TTL {ttl}" if ttl else "")
    )


def segment_tables(topology: Topology) -> Sequence[Step]:
    """The steps of the schema version that adds segments."""
    changes_ttl = f"toDateTime(change_time) + INTERVAL {CHANGE_RETENTION_DAYS} DAY"
    dirty_ttl = f"toDateTime(stamped_at) + INTERVAL {_DIRTY_RETENTION_DAYS} DAY"
    return [
        _table(
            topology,
            "segments",
            SEGMENT_COLUMNS,
            "ReplacingMergeTree(version)",
            order="(tenant_id, segment_id)",
        ),
        _table(
            topology,
            "segment_memberships",
            MEMBERSHIP_COLUMNS,
            "ReplacingMergeTree(sequence)",
            order="(tenant_id, segment_uid, person_id)",
            # GetSegmentMemberships reads one person's rows across segments.
            indexes=["INDEX idx_person_id person_id TYPE bloom_filter(0.01) GRANULARITY 4"],
        ),
        _table(
            topology,
            "segment_membership_changes",
            CHANGE_COLUMNS,
            "MergeTree()",
            order="(tenant_id, sequence)",
            ttl=changes_ttl,
        ),
        _table(
            topology,
            "segment_status",
            STATUS_COLUMNS,
            "ReplacingMergeTree(recorded_at)",
            order="(tenant_id, segment_uid)",
        ),
        _table(
            topology,
            "segment_dirty",
            DIRTY_COLUMNS,
            "MergeTree()",
            order="(tenant_id, stamped_at)",
            ttl=dirty_ttl,
        ),
        # DISTINCT per inserted block: a batch of events of one person stamps them once.
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS segment_dirty_events_mv{topology.on_cluster} "
        "TO segment_dirty AS SELECT DISTINCT tenant_id, person_id, now64(6) AS stamped_at "
        f"FROM {topology.local('events')}",
        # Both ends of an override: the source's events move, and the target gains them.
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS segment_dirty_overrides_mv{topology.on_cluster} "
        "TO segment_dirty AS SELECT DISTINCT tenant_id, "
        "arrayJoin([person_id, override_person_id]) AS person_id, now64(6) AS stamped_at "
        "FROM person_overrides",
    ]
