"""The journey tables. Statements are idempotent (IF NOT EXISTS) and applied in order at start-up."""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

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
)
