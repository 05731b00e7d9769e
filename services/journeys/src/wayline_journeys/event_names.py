"""The tenant's event names with their counts (ListEventNames): the query, its rows and the store Protocol.
Free of protobuf and of SQL.

Names are ranked by event count, then by name, and paged by keyset on that order: a cursor is the last
(count, name) returned. Events without a name are not listed (they cannot be asked for by name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from wayline_journeys.analytics import TimeRange

__all__ = ["EventNameCount", "EventNamesCursor", "EventNamesQuery", "EventNamesReadModel"]


@dataclass(frozen=True)
class EventNamesCursor:
    """Where a page ends: the last name returned and its event count."""

    event_count: int
    name: str


@dataclass(frozen=True)
class EventNamesQuery:
    tenant: str
    time_range: TimeRange = field(default_factory=TimeRange)
    name_prefix: str = ""
    after: EventNamesCursor | None = None
    limit: int = 100


@dataclass(frozen=True)
class EventNameCount:
    name: str
    event_count: int
    person_count: int
    last_seen: datetime


class EventNamesReadModel(Protocol):
    def names(self, query: EventNamesQuery) -> list[EventNameCount]:
        """At most `limit` names after `after`, the most events first, ties by name."""
        ...
