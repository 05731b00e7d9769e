"""The journeys service: the ClickHouse journey store and its analytics."""
