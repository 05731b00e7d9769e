"""Journey events as the store sees them, and the timeline query over them. Free of protobuf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Protocol, TypeGuard

from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, to_micros

if TYPE_CHECKING:
    from wayline_journeys.event_columns import EventColumns

__all__ = [
    "MAX_WRITE_EVENTS",
    "EventRecord",
    "EventWrites",
    "TimelineCursor",
    "TimelineOrder",
    "TimelinePage",
    "TimelineQuery",
    "TimelineReads",
    "cursor_after",
    "is_time_us",
]

# The most events one write takes (WriteEvents' contract): ingest's forwarder sends at most this many a call.
MAX_WRITE_EVENTS = 10_000


@dataclass(frozen=True)
class EventRecord:
    """One stored event. Identifiers are parallel lists so that ClickHouse can index the values."""

    event_id: str
    type: str
    name: str
    channel: str
    timestamp: datetime
    received_at: datetime
    sent_at: datetime | None = None
    identifier_types: tuple[str, ...] = ()
    identifier_values: tuple[str, ...] = ()
    person_id: str = ""
    properties_json: str = "{}"
    context_json: str = "{}"
    text: str = ""
    revenue: Decimal | None = None  # exact: units + nanos of the wire Money
    revenue_currency: str = ""
    group_id: str = ""
    plan_violations_json: str = "[]"
    sentiment_score: float | None = None
    original_timestamp: datetime | None = None  # the sender's timestamp before skew correction
    # Segment's per-destination switches as JSON; "" when the sender sent none ("{}" is sent and empty).
    integrations_json: str = ""
    # An alias's previous id; both "" when unset (an identifier with neither says nothing: it reads unset).
    previous_identifier_type: str = ""
    previous_identifier_value: str = ""
    # Imported history (a backfill batch): known from its timestamp on, not from received_at.
    backfill: bool = False


# Timestamp's range in microseconds: what a datetime (from_micros) and the store's DateTime64(6) hold.
_TIME_US = range(MIN_TIMESTAMP_SECONDS * 1_000_000, (MAX_TIMESTAMP_SECONDS + 1) * 1_000_000)


def is_time_us(value: object) -> TypeGuard[int]:
    """Whether `value`, a field of a page token (caller input), is a time in microseconds since the epoch
    that Timestamp's range holds: an integer (not a bool, which JSON's true decodes to) within it. Another
    one would overflow a datetime, or compare with no stored time, if it were used."""
    return type(value) is int and value in _TIME_US


class TimelineOrder(Enum):
    OLDEST_FIRST = "asc"
    NEWEST_FIRST = "desc"


@dataclass(frozen=True)
class TimelineCursor:
    """Where the previous page ended: keyset paging on (timestamp, event_id)."""

    timestamp_us: int  # microseconds since the epoch
    event_id: str

    def encode(self, binding: str) -> str:
        """The page token continuing after this cursor, for the query whose binding is `binding`."""
        return encode_page_token({"t": self.timestamp_us, "e": self.event_id, "f": binding})

    @classmethod
    def decode(cls, token: str, binding: str) -> TimelineCursor:
        """The cursor of a token issued for the query whose binding is `binding`; INVALID_PAGE_TOKEN for one
        that another query issued (its cursor would skip this query's events up to it), or that no query
        issued."""
        raw = decode_page_token(token, "GetTimeline")
        timestamp_us, event_id = raw.get("t"), raw.get("e")
        if raw.get("f") != binding or not is_time_us(timestamp_us) or not isinstance(event_id, str):
            raise invalid_page_token("GetTimeline")
        return cls(timestamp_us, event_id)


@dataclass(frozen=True)
class TimelineQuery:
    """One person's events across channels: the person named, or the person currently holding the
    identifier (the current person of the latest event carrying it)."""

    tenant: str
    person_id: str = ""
    identifier: tuple[str, str] | None = None
    channels: tuple[str, ...] = ()
    event_names: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    order: TimelineOrder = TimelineOrder.OLDEST_FIRST
    limit: int = 100
    after: TimelineCursor | None = field(default=None)
    binding: str = ""
    """What a page token of this query carries (a digest of the tenant, subject, filters and order)."""


def cursor_after(record: EventRecord) -> TimelineCursor:
    """The cursor that continues a timeline after `record`."""
    return TimelineCursor(to_micros(record.timestamp), record.event_id)


class EventWrites(Protocol):
    def write(self, tenant: str, events: EventColumns) -> int:
        """Store `events` (idempotent by event id); how many."""
        ...


@dataclass(frozen=True)
class TimelinePage:
    events: list[EventRecord]
    person_id: str
    """Whose timeline it is: the person asked for, or the current person of the latest event carrying the
    identifier asked for ("" when none does)."""


class TimelineReads(Protocol):
    def timeline_page(self, query: TimelineQuery) -> TimelinePage:
        """One page of `query`'s events, each read as its current person (identity's overrides applied)."""
        ...
