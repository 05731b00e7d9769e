"""`decision_events`: the decision service's events indexed by decision, filled on the write path.

The decision service logs every decision as a `Decision Logged` event and every feedback as a `Decision
Feedback` event (both carry `properties.decision_id`), written through ingest like any event. Finding one
decision in `events` would scan the tenant's events (they are keyed by anchor, ADR 0011), so a materialized
view copies these two event names, as they are inserted, into a table keyed by (tenant_id, decision_id,
event_id): GetDecisionEvents reads one decision's few rows, ExportDecisionEvents and CountDecisionOutcomes
scan the tenant's decisions only. The copy has every column of `events` (so rows read back as events
through the same row parser) plus the decision's id, model, version, arm and feedback outcome extracted from
the properties, and collapses retries like `events` does (ReplacingMergeTree(received_at), read with FINAL).

A version that adds a column to `events` must add it here too: the reads select READ_COLUMN_NAMES.
"""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from wayline_journeys.store.columns import INSERT_COLUMN_NAMES, column_definitions
from wayline_journeys.store.migrations import Step
from wayline_journeys.store.topology import Topology

__all__ = ["DECISION_EVENT_NAMES", "DECISION_FEEDBACK", "DECISION_LOGGED", "decision_tables"]

DECISION_LOGGED = "Decision Logged"
DECISION_FEEDBACK = "Decision Feedback"
DECISION_EVENT_NAMES = (DECISION_LOGGED, DECISION_FEEDBACK)

# Extracted from the properties: what the reads filter and group by.
_EXTRACTED: tuple[tuple[str, str], ...] = (
    ("decision_id", "decision_id"),
    ("model", "model"),
    ("model_version", "model_version"),
    ("arm", "arm"),
    ("outcome", "outcome"),
)


def _fill(events: str) -> str:
    extracted = ", ".join(f"JSONExtractString(properties, '{key}') AS {name}" for name, key in _EXTRACTED)
    return (
        f"SELECT {', '.join(INSERT_COLUMN_NAMES)}, {extracted} FROM {events} "
        f"WHERE name IN ('{DECISION_LOGGED}', '{DECISION_FEEDBACK}') "
        "AND JSONExtractString(properties, 'decision_id') != ''"
    )


def decision_tables(topology: Topology) -> Sequence[Step]:
    table = topology.local("decision_events")
    extracted = ", ".join(f"{name} String" for name, _ in _EXTRACTED)
    fill = _fill(topology.local("events"))

    def backfill(client: Client, topology: Topology) -> None:
        # Decisions logged before this version (the ML generator's): indexed once, when the table is new.
        if not client.query(f"SELECT count() FROM {table}").result_rows[0][0]:
            client.command(f"INSERT INTO {table} {fill}")

    return [
        f"""
        CREATE TABLE IF NOT EXISTS {table}{topology.on_cluster}
        (
            {column_definitions()},
            {extracted}
        )
        ENGINE = {topology.engine("decision_events", "ReplacingMergeTree", "received_at")}
        ORDER BY (tenant_id, decision_id, event_id)
        """,
        *topology.distributed("decision_events", "cityHash64(decision_id)"),
        # On a cluster the view writes through the Distributed table, so a decision's rows (its log event
        # and its feedback, whose anchors may sit on different shards) meet on one shard, by decision id.
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv{topology.on_cluster} "
        f"TO decision_events AS {fill}",
        backfill,
    ]
