"""Storage of journey events: one ClickHouse implementation, embedded (chDB) or a server, same SQL."""

from wayline_journeys.store.client import JourneyDatabase, connect_clickhouse, store_error
from wayline_journeys.store.journey_store import JourneyStore
from wayline_journeys.store.overrides import PersonOverrideStore

__all__ = ["JourneyDatabase", "JourneyStore", "PersonOverrideStore", "connect_clickhouse", "store_error"]
