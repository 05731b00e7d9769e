"""The journey tables. Statements are idempotent (IF NOT EXISTS) and applied in order at start-up."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "OVERRIDE_CURSOR_COLUMNS", "PERSON_OVERRIDE_COLUMNS"]

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

# Events are deduplicated by (tenant, day, event_id): ReplacingMergeTree keeps one row per key, and reads
# use FINAL, so a retried or replayed write never shows twice. person_id is not part of the key, because
# the same event replayed after a merge may carry another person id (PostHog's choice for the same reason).
# Per-person and per-identifier reads are helped by bloom-filter skip indexes; the journeys issue revisits
# the physical layout for analytics at scale.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS events
    (
        tenant_id LowCardinality(String),
        event_id UUID,
        type LowCardinality(String),
        name String,
        channel LowCardinality(String),
        timestamp DateTime64(6, 'UTC'),
        sent_at Nullable(DateTime64(6, 'UTC')),
        received_at DateTime64(6, 'UTC'),
        identifier_types Array(LowCardinality(String)),
        identifier_values Array(String),
        person_id String,
        properties String CODEC(ZSTD(3)),
        context String CODEC(ZSTD(3)),
        text String CODEC(ZSTD(3)),
        revenue Nullable(Decimal(38, 9)),
        revenue_currency LowCardinality(String),
        group_id String,
        plan_violations String,
        sentiment_score Nullable(Float64),
        INDEX idx_identifier_values identifier_values TYPE bloom_filter(0.01) GRANULARITY 4,
        INDEX idx_person_id person_id TYPE bloom_filter(0.01) GRANULARITY 4
    )
    ENGINE = ReplacingMergeTree(received_at)
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (tenant_id, toDate(timestamp), event_id)
    """,
    # Issue 6: the sender's timestamp before ingest's clock-skew correction (Segment's originalTimestamp).
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS original_timestamp Nullable(DateTime64(6, 'UTC'))",
    # Person overrides (PostHog's person_overrides design): one row per applied version, ReplacingMergeTree
    # keeps the highest version per key in the background, and reads take argMax(..., version) per key
    # instead of FINAL, so they are exact before merges too. The table is small (one row per merge, unmerge
    # or split), hence no partitioning; the bloom filter serves "which persons point to P".
    f"""
    CREATE TABLE IF NOT EXISTS person_overrides
    (
        {", ".join(f"{name} {type_}" for name, type_ in PERSON_OVERRIDE_COLUMNS)},
        INDEX idx_override_person_id override_person_id TYPE bloom_filter(0.01) GRANULARITY 4
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY (tenant_id, person_id, identifier_type, identifier_value)
    """,
    # The override feed's cursor per tenant (see follower.py): the highest version of identity's feed that
    # journeys has applied, every version below it included. Kept apart from person_overrides because that
    # table's max(version) goes down when an erasure deletes overrides, and goes up with overrides pushed by
    # ingest that say nothing about the versions before them. Reads take max(version) per tenant, so the
    # cursor never moves back, before or after ReplacingMergeTree keeps one row per tenant.
    f"""
    CREATE TABLE IF NOT EXISTS override_cursors
    (
        {", ".join(f"{name} {type_}" for name, type_ in OVERRIDE_CURSOR_COLUMNS)}
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY tenant_id
    """,
)
