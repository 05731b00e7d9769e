"""Storage of journey events: one ClickHouse implementation, embedded (chDB) or a server, same SQL."""

from wayline_journeys.store.clickhouse import ClickHouseEventStore, connect_clickhouse
from wayline_journeys.store.overrides import PersonOverrideStore

__all__ = ["ClickHouseEventStore", "PersonOverrideStore", "connect_clickhouse"]
