"""Storage of journey events: one ClickHouse implementation, embedded (chDB) or a server, same SQL."""

from wayline_journeys.store.clickhouse import ClickHouseEventStore, connect_clickhouse

__all__ = ["ClickHouseEventStore", "connect_clickhouse"]
