"""Each tenant's default lifecycle model in ClickHouse (`lifecycle_models`): one row per revision, the model's
definition as opaque text (the converters' business). A tiny table: reads take the newest row with FINAL,
which applies ReplacingMergeTree's own rule, so a read before and after a background merge agree."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from wayline_journeys.store.client import insert_rows, query_rows

__all__ = ["ClickHouseLifecycleModelStore", "StoredLifecycleModel"]


@dataclass(frozen=True)
class StoredLifecycleModel:
    definition: str
    revision: int
    update_time: datetime


class ClickHouseLifecycleModelStore:
    """Thread-safe; updates within one replica are serialised, so each gets its own revision (of updates on
    two replicas at once, one wins)."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client
        self._lock = threading.Lock()

    def get(self, tenant: str) -> StoredLifecycleModel | None:
        rows = query_rows(
            self._client(),
            "SELECT model, revision, update_time FROM lifecycle_models FINAL "
            "WHERE tenant_id = {tenant:String} ORDER BY revision DESC LIMIT 1",
            {"tenant": tenant},
            "reading the lifecycle model",
        )
        if not rows:
            return None
        definition, revision, update_time = rows[0]
        return StoredLifecycleModel(definition, int(revision), update_time.replace(tzinfo=UTC))

    def put(self, tenant: str, definition: str) -> StoredLifecycleModel:
        """Store `definition` as the tenant's next revision."""
        with self._lock:
            current = self.get(tenant)
            stored = StoredLifecycleModel(
                definition, (current.revision if current else 0) + 1, datetime.now(UTC)
            )
            insert_rows(
                self._client(),
                "lifecycle_models",
                [[tenant, stored.revision, definition, stored.update_time]],
                ("tenant_id", "revision", "model", "update_time"),
                "storing the lifecycle model",
            )
        return stored
