"""The demo scenario: customers meeting a brand on many channels and devices, in sessions over five weeks,
sent through the gateway and read back as timelines and analytics. Deterministic (seeded, and aligned to
weeks) so that two runs tell the same story."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf import struct_pb2

from wayline.client import money
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb

__all__ = ["CURRENCY", "CUSTOMERS", "Customer", "demo_events", "invalid_event", "timeline_request"]


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
CURRENCY = "EUR"  # every order's `revenue` is in euros; the journeys step values customers in it

# (channel, event type, name, properties): the touchpoints journeys are made of. An order's `revenue`
# property is also set as the event's `revenue` (Money in CURRENCY), which customer value counts.
TOUCHPOINTS: dict[str, tuple[int, int, str, dict[str, str | float]]] = {
    "ad": (C.CHANNEL_DISPLAY_ADS, C.EVENT_TYPE_TRACK, "Ad Clicked", {"campaign": "winter-sale"}),
    "post": (C.CHANNEL_SOCIAL, C.EVENT_TYPE_TRACK, "Post Engaged", {"network": "instagram"}),
    "share": (
        C.CHANNEL_SOCIAL,
        C.EVENT_TYPE_TRACK,
        "Product Shared",
        {"network": "instagram", "sku": "JKT-042"},
    ),
    "view": (C.CHANNEL_WEB, C.EVENT_TYPE_PAGE, "Product Viewed", {"sku": "JKT-042", "price": 129.0}),
    "view_scarf": (C.CHANNEL_WEB, C.EVENT_TYPE_PAGE, "Product Viewed", {"sku": "SCF-3", "price": 49.5}),
    "add": (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Product Added", {"sku": "JKT-042", "quantity": 1}),
    "checkout": (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Checkout Started", {"cart_value": 129.0}),
    "order": (C.CHANNEL_WEB, C.EVENT_TYPE_TRACK, "Order Completed", {"order_id": "web", "revenue": 129.0}),
    "home": (C.CHANNEL_MOBILE_APP, C.EVENT_TYPE_SCREEN, "Home", {}),
    "app_view": (
        C.CHANNEL_MOBILE_APP,
        C.EVENT_TYPE_TRACK,
        "Product Viewed",
        {"sku": "BOOT-7", "price": 89.0},
    ),
    "app_add": (C.CHANNEL_MOBILE_APP, C.EVENT_TYPE_TRACK, "Product Added", {"sku": "BOOT-7", "quantity": 1}),
    "app_checkout": (C.CHANNEL_MOBILE_APP, C.EVENT_TYPE_TRACK, "Checkout Started", {"cart_value": 89.0}),
    "app_order": (
        C.CHANNEL_MOBILE_APP,
        C.EVENT_TYPE_TRACK,
        "Order Completed",
        {"order_id": "app", "revenue": 89.0},
    ),
    "email_open": (C.CHANNEL_EMAIL, C.EVENT_TYPE_TRACK, "Email Opened", {"campaign": "cart-reminder"}),
    "email_click": (C.CHANNEL_EMAIL, C.EVENT_TYPE_TRACK, "Email Clicked", {"campaign": "cart-reminder"}),
    "sms": (C.CHANNEL_SMS, C.EVENT_TYPE_TRACK, "SMS Delivered", {"campaign": "flash-sale"}),
    "push": (C.CHANNEL_PUSH, C.EVENT_TYPE_TRACK, "Push Opened", {"campaign": "back-in-stock"}),
    "chat": (C.CHANNEL_CHATBOT, C.EVENT_TYPE_TRACK, "Chat Message", {"topic": "sizing"}),
    "call": (
        C.CHANNEL_CALL_CENTER,
        C.EVENT_TYPE_TRACK,
        "Call Completed",
        {"reason": "delivery", "minutes": 6},
    ),
    "kiosk": (C.CHANNEL_KIOSK, C.EVENT_TYPE_TRACK, "Loyalty Points Checked", {"points": 420}),
    "store_order": (
        C.CHANNEL_IN_STORE,
        C.EVENT_TYPE_TRACK,
        "Order Completed",
        {"order_id": "pos", "store": "berlin-mitte", "revenue": 59.9},
    ),
}
# What customers wrote or said; ingest scores each text's sentiment, which the journeys step reads by channel.
# An event's text is chosen by its id, so the random stream (and the rest of the data) is the same.
TEXTS = {
    "Chat Message": (
        "Does the jacket run small? I'm usually a medium.",
        "Still no refund after two weeks, this is really frustrating.",
        "Thanks, that was very helpful!",
    ),
    "Call Completed": (
        "Customer was happy the parcel arrived early.",
        "Customer was angry that the parcel arrived damaged.",
        "Customer asked to change the delivery address.",
    ),
}
# Sessions: the touchpoints of one visit, minutes apart (sessions are days apart), so that paths, funnels
# and retention have something to find.
SESSIONS: dict[str, tuple[str, ...]] = {
    "buy_web": ("ad", "view", "add", "checkout", "order"),
    "buy_after_email": ("email_open", "email_click", "view", "add", "checkout", "order"),
    "buy_app": ("push", "home", "app_view", "app_add", "app_checkout", "app_order"),
    "buy_in_store": ("kiosk", "store_order"),
    "browse_web": ("post", "view", "view_scarf"),
    "browse_app": ("home", "app_view", "app_view"),
    "leave_cart": ("view", "view_scarf", "add"),
    "leave_checkout": ("view", "add", "checkout"),
    "ask_sizing": ("chat", "view", "add", "checkout"),
    "reminded": ("email_open", "email_click", "view"),
    "share": ("post", "share"),
    "sms": ("sms",),
    "call": ("call",),
}


@dataclass(frozen=True)
class Persona:
    """How a customer behaves: first seen `first_week` weeks before the current one (Monday-based, UTC, so
    the weekly cohorts do not depend on the weekday of the run), their first sessions a day apart, then
    others drawn from `habits` until `quiet_days` ago."""

    first_week: int
    opening: tuple[str, ...]
    habits: tuple[str, ...]
    quiet_days: float = 0


PERSONAS: dict[str, Persona] = {  # by user_id
    # buys on the web again and again and tells her friends
    "u-ava": Persona(4, ("buy_web", "share"), ("buy_after_email", "browse_web", "buy_web", "share", "sms")),
    # lived in the app, bought there and in the store, and has not been back for ten days
    "u-ben": Persona(4, ("buy_app", "buy_in_store"), ("browse_app", "buy_app", "buy_in_store", "call"), 10),
    # keeps starting checkouts and never finishes one
    "u-chloe": Persona(3, ("ask_sizing",), ("leave_checkout", "browse_web", "reminded", "ask_sizing")),
    # fills carts online, buys in the store
    "u-dev": Persona(2, ("leave_cart", "buy_in_store"), ("leave_cart", "browse_app", "call", "browse_web")),
    # new: bought once, browses since
    "u-emma": Persona(1, ("buy_web",), ("browse_web", "sms", "leave_checkout", "reminded")),
}


def _event(customer: Customer, at: datetime, touchpoint: str, rng: random.Random) -> event_pb2.Event:
    channel, type_, name, properties = TOUCHPOINTS[touchpoint]
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
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    texts = TEXTS.get(name, ("",))
    event = event_pb2.Event(
        event_id=str(event_id),
        type=type_,  # type: ignore[arg-type]
        name=name,
        channel=channel,  # type: ignore[arg-type]
        timestamp=to_timestamp(at),
        identifiers=identifiers,
        properties=props,
        text=texts[event_id.int % len(texts)],
    )
    if "revenue" in properties:
        event.revenue.CopyFrom(money(str(properties["revenue"]), CURRENCY))
    return event


def _sessions(persona: Persona, quota: int, rng: random.Random) -> list[tuple[str, ...]]:
    """The persona's sessions, `quota` touchpoints in all (the last session cut short)."""
    sessions: list[tuple[str, ...]] = []
    left = quota
    while left > 0:
        name = persona.opening[len(sessions)] if len(sessions) < len(persona.opening) else None
        steps = SESSIONS[name or rng.choice(persona.habits)][:left]
        sessions.append(steps)
        left -= len(steps)
    return sessions


def demo_events(count: int, now: datetime, seed: int = 7) -> list[event_pb2.Event]:
    """`count` events shared among the customers, in sessions over the last five weeks, oldest first."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    events = []
    for index, customer in enumerate(CUSTOMERS):
        persona = PERSONAS[customer.user_id]
        quota = count // len(CUSTOMERS) + (index < count % len(CUSTOMERS))
        sessions = _sessions(persona, quota, rng)
        first_seen = monday - timedelta(weeks=persona.first_week, hours=-rng.uniform(8, 5 * 24))
        later = (now - timedelta(days=persona.quiet_days, hours=1) - first_seen).total_seconds()
        starts = [first_seen + timedelta(days=i) for i in range(len(persona.opening))]
        starts += sorted(
            first_seen + timedelta(seconds=rng.uniform(len(persona.opening) * 86400, later))
            for _ in sessions[len(starts) :]
        )
        for start, steps in zip(starts, sessions, strict=False):
            at = start
            for touchpoint in steps:
                events.append((at, _event(customer, at, touchpoint, rng)))
                at += timedelta(seconds=rng.uniform(20, 360))
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
