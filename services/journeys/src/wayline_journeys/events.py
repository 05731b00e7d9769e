"""Journey events as the store sees them, and the timeline query over them. Free of protobuf."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from wayline.common.errors import FieldViolation
from wayline_journeys.errors import InvalidPageToken

__all__ = ["EventRecord", "TimelineCursor", "TimelineOrder", "TimelineQuery"]


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


class TimelineOrder(Enum):
    OLDEST_FIRST = "asc"
    NEWEST_FIRST = "desc"


@dataclass(frozen=True)
class TimelineCursor:
    """Where the previous page ended: keyset paging on (timestamp, event_id)."""

    timestamp_us: int  # microseconds since the epoch
    event_id: str

    def encode(self) -> str:
        raw = json.dumps({"t": self.timestamp_us, "e": self.event_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, token: str) -> TimelineCursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token.encode()))
            return cls(timestamp_us=int(raw["t"]), event_id=str(raw["e"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidPageToken(
                "page_token is not one this service issued; pass next_page_token from the previous page",
                [FieldViolation("page_token", "not a token from a previous GetTimeline response")],
            ) from exc


@dataclass(frozen=True)
class TimelineQuery:
    """One person's events across channels, or the events that carry one identifier."""

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
