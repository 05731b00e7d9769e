"""Building events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2

__all__ = ["make_event"]


def make_event(
    user_id: str,
    *,
    name: str = "Product Viewed",
    channel: int = event_pb2.CHANNEL_WEB,
    at: datetime | None = None,
    minutes_ago: float = 0,
) -> event_pb2.Event:
    when = (at or datetime.now(UTC)) - timedelta(minutes=minutes_ago)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=channel,  # type: ignore[arg-type]
        timestamp=to_timestamp(when),
        identifiers=[event_pb2.Identifier(type="user_id", value=user_id)],
    )
