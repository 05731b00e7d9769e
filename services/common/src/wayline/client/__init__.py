"""The Wayline client for backend services: typed Segment-style calls, a background batching queue, retries
with the same event ids, back-pressure and flush on exit, over gRPC through the gateway.

    from wayline.client import Client

    with Client("wayline.example.com:443", api_key, channel="web") as wayline:
        wayline.track("Order Completed", identifiers={"user_id": "u-42"}, properties={"order_id": "A-1"})

See docs/client.md for the guide.
"""

from __future__ import annotations

from wayline.client.batching import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from wayline.client.client import Client, OnError
from wayline.client.convert import money
from wayline.client.errors import ClientClosed, ClientError, DeliveryError, InvalidEvent, QueueFull
from wayline.client.events import (
    alias_event,
    group_event,
    identify_event,
    page_event,
    screen_event,
    track_event,
)
from wayline.client.retry import Backoff
from wayline.client.stats import ClientStats

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_EVENT_BYTES",
    "Backoff",
    "Client",
    "ClientClosed",
    "ClientError",
    "ClientStats",
    "DeliveryError",
    "InvalidEvent",
    "OnError",
    "QueueFull",
    "alias_event",
    "group_event",
    "identify_event",
    "money",
    "page_event",
    "screen_event",
    "track_event",
]
