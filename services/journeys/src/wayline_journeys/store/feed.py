"""What the override-feed follower keeps in ClickHouse: its cursor per tenant, and which tenants exist.

`override_cursors` holds one row per advance (ReplacingMergeTree(version) keeps one per tenant in the
background); reads take max(version), so a cursor never moves back, whatever the merges or several replicas
advancing it at once do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from wayline_journeys.store.client import insert_rows, query_rows
from wayline_journeys.store.schema import OVERRIDE_CURSOR_COLUMNS

__all__ = ["FeedStateStore"]

_COLUMN_NAMES = tuple(name for name, _ in OVERRIDE_CURSOR_COLUMNS)

# tenant_id leads the events' sorting key and is LowCardinality: DISTINCT reads one small, sorted,
# dictionary-encoded column (no FINAL: a duplicate row names the same tenant). The other two tables are small.
_TENANTS = """
SELECT DISTINCT tenant_id FROM events
UNION DISTINCT SELECT DISTINCT tenant_id FROM person_overrides
UNION DISTINCT SELECT DISTINCT tenant_id FROM override_cursors
"""


class FeedStateStore:
    """Thread-safe; shares the event store's client."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client

    def cursors(self) -> dict[str, int]:
        """Every tenant's cursor: the highest feed version applied (tenants without one are at 0)."""
        rows = self._query("SELECT tenant_id, max(version) FROM override_cursors GROUP BY tenant_id")
        return {str(tenant): int(version) for tenant, version in rows}

    def advance(self, tenant: str, version: int) -> None:
        row = [tenant, version, datetime.now(UTC)]
        insert_rows(
            self._client(), "override_cursors", [row], _COLUMN_NAMES, "recording the override feed's cursor"
        )

    def tenants(self) -> set[str]:
        """Every tenant with stored events, overrides or a cursor."""
        return {str(tenant) for (tenant,) in self._query(_TENANTS)}

    def _query(self, sql: str) -> Sequence[Sequence[Any]]:
        return query_rows(self._client(), sql, None, "reading the override feed's state")
