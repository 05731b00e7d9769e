"""The demo scenario: customers meeting a brand on many channels and devices, sent through the gateway and
read back as timelines. Deterministic (seeded) so that two runs tell the same story."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf import struct_pb2

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb

__all__ = ["CUSTOMERS", "Customer", "demo_events", "invalid_event", "timeline_request"]


C = event_pb2


@dataclass(frozen=True)
class Customer:
    user_id: str
    email: str
    phone: str
    phones: tuple[str, ...]  # app installs (device ids)
    browsers: tuple[str, ...]  # browser cookies (anonymous ids)


CUSTOMERS: tuple[Customer, ...] = (
    Customer("u-ava", "ava@example.com", "+4915112345671", ("ios-ava-1",), ("web-ava-laptop",)),
    Customer("u-ben", "ben@example.com", "+4915112345672", ("android-ben-1",), ()),
    Customer(
        "u-chloe", "chloe@example.com", "+4915112345673", ("ios-chloe",), ("web-chloe-work", "web-chloe-home")
    ),
    Customer("u-dev", "dev@example.com", "+4915112345674", ("android-dev-1", "android-dev-2"), ("web-dev",)),
    Customer("u-emma", "emma@example.com", "+4915112345675", ("ios-emma",), ("web-emma",)),
)
APP_CHANNELS = (C.CHANNEL_MOBILE_APP, C.CHANNEL_PUSH)
BROWSER_CHANNELS = (C.CHANNEL_WEB, C.CHANNEL_DISPLAY_ADS, C.CHANNEL_SOCIAL, C.CHANNEL_CHATBOT)

# (channel, event type, name, properties): the touchpoints a journey is drawn from.
TOUCHPOINTS: tuple[tuple[int, int, str, dict[str, str | float]], ...] = (
    (C.CHANNEL_DISPLAY_ADS, C.EVENT_TYPE_TRACK, "Ad Clicked", {"campaign": "winter-sale"}),
    (C.CHANNEL_SOCIAL, C.EVENT_TYPE_TRACK, "Post Engaged", {"network": "instagram"}),
    (C.CHANNEL_WEB, C.EVENT_TYPE_PAGE, "Product Viewed", {"sku": "JKT-042", "price": 129.0}),
    (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Product Added", {"sku": "JKT-042", "quantity": 1}),
    (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Checkout Started", {"cart_value": 129.0}),
    (C.CHANNEL_MOBILE_APP, C.EVENT_TYPE_SCREEN, "Home", {}),
    (C.CHANNEL_MOBILE_APP, C.EVENT_TYPE_TRACK, "Product Viewed", {"sku": "BOOT-7", "price": 89.0}),
    (C.CHANNEL_EMAIL, C.EVENT_TYPE_TRACK, "Email Opened", {"campaign": "cart-reminder"}),
    (C.CHANNEL_EMAIL, C.EVENT_TYPE_TRACK, "Email Clicked", {"campaign": "cart-reminder"}),
    (C.CHANNEL_SMS, C.EVENT_TYPE_TRACK, "SMS Delivered", {"campaign": "flash-sale"}),
    (C.CHANNEL_PUSH, C.EVENT_TYPE_TRACK, "Push Opened", {"campaign": "back-in-stock"}),
    (C.CHANNEL_CHATBOT, C.EVENT_TYPE_TRACK, "Chat Message", {"topic": "sizing"}),
    (C.CHANNEL_CALL_CENTER, C.EVENT_TYPE_TRACK, "Call Completed", {"reason": "delivery", "minutes": 6}),
    (C.CHANNEL_IN_STORE, C.EVENT_TYPE_TRACK, "Order Completed", {"store": "berlin-mitte", "revenue": 89.0}),
    (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Order Completed", {"order_id": "web", "revenue": 129.0}),
    (C.CHANNEL_KIOSK, C.EVENT_TYPE_TRACK, "Loyalty Points Checked", {"points": 420}),
)
TEXTS = {
    "Chat Message": "Does the jacket run small? I'm usually a medium.",
    "Call Completed": "Customer was happy the parcel arrived early.",
}


def _event(customer: Customer, at: datetime, rng: random.Random) -> event_pb2.Event:
    channel, type_, name, properties = rng.choice(TOUCHPOINTS)
    identifiers = [event_pb2.Identifier(type="user_id", value=customer.user_id)]
    if channel in APP_CHANNELS:
        identifiers.append(event_pb2.Identifier(type="device_id", value=rng.choice(customer.phones)))
    if channel in BROWSER_CHANNELS and customer.browsers:
        identifiers.append(event_pb2.Identifier(type="anonymous_id", value=rng.choice(customer.browsers)))
    if channel in (C.CHANNEL_KIOSK, C.CHANNEL_IN_STORE):
        identifiers.append(event_pb2.Identifier(type="loyalty_id", value=f"L-{customer.user_id[2:]}"))
    if channel == C.CHANNEL_EMAIL:
        identifiers.append(event_pb2.Identifier(type="email", value=customer.email))
    if channel in (C.CHANNEL_SMS, C.CHANNEL_CALL_CENTER):
        identifiers.append(event_pb2.Identifier(type="phone", value=customer.phone))
    props = struct_pb2.Struct()
    props.update(properties)
    return event_pb2.Event(
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        type=type_,  # type: ignore[arg-type]
        name=name,
        channel=channel,  # type: ignore[arg-type]
        timestamp=to_timestamp(at),
        identifiers=identifiers,
        properties=props,
        text=TEXTS.get(name, ""),
    )


def demo_events(count: int, now: datetime, seed: int = 7) -> list[event_pb2.Event]:
    """`count` events spread over the customers and the last 30 days, oldest first."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    start = now - timedelta(days=30)
    events = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        events.append((at, _event(rng.choice(CUSTOMERS), at, rng)))
    return [event for _, event in sorted(events, key=lambda pair: pair[0])]


def batches(events: Sequence[event_pb2.Event], size: int) -> Iterator[ingest_pb.TrackBatchRequest]:
    for start in range(0, len(events), size):
        yield ingest_pb.TrackBatchRequest(events=events[start : start + size])


def invalid_event() -> event_pb2.Event:
    """An event with three mistakes, to show how the gateway answers them."""
    return event_pb2.Event(
        event_id="not-a-uuid",
        type=C.EVENT_TYPE_TRACK,
        channel=C.CHANNEL_WEB,
        identifiers=[event_pb2.Identifier(type="Email Address", value="ava@example.com")],
        timestamp=to_timestamp(datetime.now(UTC)),
    )


def timeline_request(
    customer: Customer, page_size: int, page_token: str = ""
) -> journeys_pb.GetTimelineRequest:
    return journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=customer.user_id),
        page_size=page_size,
        page_token=page_token,
    )
