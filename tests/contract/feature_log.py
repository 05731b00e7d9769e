"""A seeded, varied event log for the online/offline feature parity test: persons with tracks, pages and
identifies on many channels; properties of every JSON kind (numbers that make the order of addition matter,
numeric strings, booleans, nulls, nested objects in varying key order, lists, RFC 3339 times, non-ASCII
text); context, revenue (with refunds and amounts past 2^53 nanos), sentiment, group ids; ties at one
instant; late arrivals (received days after their timestamp), senders' clocks ahead (received before their
timestamp); redeliveries (the same event twice) and retries (the same id received again later)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2

__all__ = ["DAY", "HOUR", "MINUTE", "Logged", "event_log"]

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NAMES = ("Product Viewed", "Checkout", "Purchased", "Support Chat", "Email Opened", "Product Returned")
CHANNELS = (
    event_pb2.CHANNEL_WEB,
    event_pb2.CHANNEL_MOBILE_APP,
    event_pb2.CHANNEL_EMAIL,
    event_pb2.CHANNEL_CALL_CENTER,
    event_pb2.CHANNEL_IN_STORE,
)
TEXTS = ("", "", "please refund my order", "Great service", "where is my parcel?", "REFUND now", "été 2026")
PLANS: tuple[Any, ...] = ("free", "pro", "été", "Pro", 3.0, 0.0, -0.0, True, None, "enterprise")
AMOUNTS: tuple[Any, ...] = (
    *(0.1, 0.2, 0.3, 1e21, -1e21, 12.0, 125.0, 99.99, 55.5, -0.0, 0.0, "12", True, None),
    *(1e-7, 1.5e-5, 1e20),  # laid out as text as 1e-7, 0.000015, 100000000000000000000
)


@dataclass(frozen=True)
class Logged:
    """One delivery of an event: what is written to journeys and fed to the online state."""

    event: event_pb2.Event
    received_us: int


def _amount(rng: random.Random) -> Any:
    return rng.choice([*AMOUNTS, round(rng.uniform(-20, 150), 2), float(rng.randint(0, 60))])


def _cart(rng: random.Random) -> Any:
    items = rng.choice([1.0, 2.0, 2.5, [1.0, 2.0], None, {"n": 3.0}])
    pairs = [("items", items), ("sku", rng.choice(["a-1", "b-2"]))]
    rng.shuffle(pairs)  # the same object in another key order is the same JSON value
    return dict(pairs)


def _properties(rng: random.Random, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if rng.random() < 0.7:
        found["amount"] = _amount(rng)
    if rng.random() < 0.6:
        found["plan"] = rng.choice(PLANS)
    if rng.random() < 0.3:
        found["cart"] = _cart(rng)
    if rng.random() < 0.3:
        found["coupon"] = rng.choice(["SPRING", "spring-10", "", None])
    if rng.random() < 0.4:
        found["flag"] = rng.choice([True, False, 0.0, 2.0, "yes"])
    if rng.random() < 0.3:
        day = rng.randint(1, 28)
        found["due"] = rng.choice([f"2026-10-{day:02d}T12:00:00Z", f"2026-10-{day:02d} 08:30:00", "soon"])
    if rng.random() < 0.2:
        found["tags"] = rng.sample(["a", "b", "c"], rng.randint(0, 2))
    if rng.random() < 0.3:
        found["meta"] = {"depth": {"level": rng.choice([1.0, 2.0, "2"])}}
    if name == "Product Returned":
        found["reason"] = rng.choice(["damaged", "late", "Damaged"])
    return found


def _traits(rng: random.Random) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if rng.random() < 0.7:
        found["tier"] = rng.choice(["gold", "silver", "bronze", None, 1.0])
    if rng.random() < 0.4:
        found["vip"] = rng.choice([True, False, None, "no"])
    if rng.random() < 0.4:
        found["score"] = rng.choice([0.5, 10.0, -3.25, "high", None])
    if rng.random() < 0.3:
        found["prefs"] = _cart(rng)
    return found


def _context(rng: random.Random, event: event_pb2.Event) -> None:
    if rng.random() < 0.4:
        event.context.campaign.source = rng.choice(["newsletter", "google", "partner"])
    if rng.random() < 0.3:
        event.context.location.country = rng.choice(["FR", "DE", "GB"])
    if rng.random() < 0.3:
        event.context.device.type = rng.choice([event_pb2.DEVICE_TYPE_MOBILE, event_pb2.DEVICE_TYPE_DESKTOP])
        event.context.device.display_width = rng.choice([390, 1920])


def _revenue(rng: random.Random) -> event_pb2.Money:
    units = rng.choice([rng.randint(0, 300), -rng.randint(1, 50), rng.randint(10**7, 10**10)])
    nanos = rng.randint(0, 999_999_999)
    return event_pb2.Money(currency_code="EUR", units=units, nanos=nanos if units >= 0 else -nanos)


def _delay(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.06:
        return rng.randint(1, 9) * DAY + rng.randint(0, DAY)  # a late arrival
    if roll < 0.12:
        return -rng.randint(1, 6 * HOUR)  # a sender's clock ahead: received before it happened
    return rng.choice([0, rng.randint(1, 90_000_000), rng.randint(1, 3 * HOUR)])


def _event(rng: random.Random, person: str, ts: int, rs: int) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        channel=rng.choice(CHANNELS),
        timestamp=to_timestamp(from_micros(ts)),
        received_at=to_timestamp(from_micros(rs)),
        person_id=person,
        identifiers=[event_pb2.Identifier(type="user_id", value=person)],
    )
    roll = rng.random()
    if roll < 0.12:
        event.type = event_pb2.EVENT_TYPE_IDENTIFY
        event.properties.update(_traits(rng))
        return event
    event.type = event_pb2.EVENT_TYPE_PAGE if roll < 0.2 else event_pb2.EVENT_TYPE_TRACK
    event.name = rng.choice(NAMES)
    event.properties.update(_properties(rng, event.name))
    event.text = rng.choice(TEXTS)
    if event.text and rng.random() < 0.7:
        event.sentiment_score = rng.choice([-0.75, 0.5, 0.125, -0.0, rng.uniform(-1, 1)])
    if event.name in ("Purchased", "Product Returned") or rng.random() < 0.05:
        event.revenue.CopyFrom(_revenue(rng))
    if rng.random() < 0.2:
        event.group_id = rng.choice(["acme", "globex", ""])
    _context(rng, event)
    return event


def event_log(seed: int, start_us: int, persons: int, span_days: int) -> list[Logged]:
    """Deliveries sorted by received_at (stable), the order a sink delivers them in."""
    rng = random.Random(seed)
    log: list[Logged] = []
    for p in range(persons):
        person = f"person-{seed}-{p}"
        previous = start_us
        for _ in range(rng.choice([3, 25, 60, 120, 250])):
            ts = previous if rng.random() < 0.06 else start_us + rng.randint(0, span_days * DAY)
            previous, rs = ts, max(start_us, ts + _delay(rng))
            event = _event(rng, person, ts, rs)
            log.append(Logged(event, rs))
            if rng.random() < 0.04:  # a redelivery: the very same event again
                log.append(Logged(event, rs))
            elif rng.random() < 0.03:  # a retry received again later: the store keeps the later copy
                retry = event_pb2.Event()
                retry.CopyFrom(event)
                later = rs + rng.randint(1, 20 * MINUTE)
                retry.received_at.CopyFrom(to_timestamp(from_micros(later)))
                log.append(Logged(retry, later))
    log.sort(key=lambda d: d.received_us)
    return log
