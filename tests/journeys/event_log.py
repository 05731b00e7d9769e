"""Random event logs for the analytics tests: plain records the Python references read, and the same events
as protobuf for WriteEvents. Seeded `random.Random` instances, so every log is reproducible from its seed."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from google.protobuf import struct_pb2

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2

__all__ = ["CHANNELS", "Ev", "latest_plans", "random_log", "to_pb"]

CHANNELS = ("web", "mobile_app", "email")
_NAMES = ("Product Viewed", "Added To Cart", "Checkout", "Signed Up", "Purchased", "Heartbeat")
_PAGES = ("/home", "/product/1", "/product/22", "/product/333", "/cart", "/help/faq")
_TYPES = {
    "track": event_pb2.EVENT_TYPE_TRACK,
    "page": event_pb2.EVENT_TYPE_PAGE,
    "screen": event_pb2.EVENT_TYPE_SCREEN,
    "identify": event_pb2.EVENT_TYPE_IDENTIFY,
}


@dataclass(frozen=True)
class Ev:
    """One stored event as the references see it."""

    person: str
    at: datetime
    event_id: str
    type: str
    name: str
    channel: str
    page_path: str = ""
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _gap(rng: random.Random) -> timedelta:
    """Mostly short gaps (same session), sometimes long ones (a new session), a few exact ties."""
    roll = rng.random()
    if roll < 0.05:
        return timedelta(0)
    if roll < 0.75:
        return timedelta(seconds=rng.randint(1, 20 * 60))
    if roll < 0.9:
        return timedelta(minutes=rng.randint(25, 40))  # around the default 30-minute gap
    return timedelta(hours=rng.randint(1, 80))


def _event(rng: random.Random, person: str, at: datetime) -> Ev:
    kind = rng.choices(("track", "page", "screen", "identify"), weights=(5, 4, 2, 1))[0]
    channel = rng.choice(CHANNELS)
    properties: dict[str, Any] = {}
    if rng.random() < 0.6:
        properties["plan"] = rng.choice(("free", "pro", 3.0, True))
    if kind == "identify":
        return Ev(person, at, str(uuid.UUID(int=rng.getrandbits(128))), kind, "", channel, "", properties)
    name = rng.choice(_NAMES)
    path = ""
    if kind == "page":
        name = rng.choice(("", "", "Landing"))
        path = rng.choice((*_PAGES, ""))
    elif kind == "screen":
        name = rng.choice(("Home Screen", "Basket Screen", "Product Screen"))
    return Ev(person, at, str(uuid.UUID(int=rng.getrandbits(128))), kind, name, channel, path, properties)


def random_log(seed: int, start: datetime, persons: int = 25, max_events: int = 30) -> list[Ev]:
    rng = random.Random(seed)
    log: list[Ev] = []
    for p in range(persons):
        person = f"person-{seed}-{p}"
        at = start + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        for _ in range(rng.randint(1, max_events)):
            log.append(_event(rng, person, at))
            at += _gap(rng)
    return log


def to_pb(e: Ev) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=e.event_id,
        type=_TYPES[e.type],
        name=e.name,
        channel=event_pb2.Channel.Value(f"CHANNEL_{e.channel.upper()}"),
        timestamp=to_timestamp(e.at),
        received_at=to_timestamp(e.at),
        person_id=e.person,
        identifiers=[event_pb2.Identifier(type="user_id", value=e.person)],
    )
    if e.page_path:
        event.context.page.path = e.page_path
    if e.properties:
        properties = struct_pb2.Struct()
        properties.update(e.properties)
        event.properties.CopyFrom(properties)
    return event


class _Traited(Protocol):
    """An event record the references read a person's traits from (Ev, and the trends reference's)."""

    @property
    def person(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def type(self) -> str: ...
    @property
    def properties(self) -> dict[str, Any]: ...


def latest_plans(log: Iterable[_Traited]) -> dict[str, object]:
    """Each person's `person.plan`: the value in their latest identify event that has one; of two at one
    time, the one whose id's text is the larger (the store's EVENT_ORDER)."""
    latest: dict[str, tuple[tuple[datetime, str], object]] = {}
    for e in log:
        if (
            e.type == "identify"
            and "plan" in e.properties
            and (e.person not in latest or (e.at, e.event_id) > latest[e.person][0])
        ):
            latest[e.person] = ((e.at, e.event_id), e.properties["plan"])
    return {person: value for person, (_, value) in latest.items()}
