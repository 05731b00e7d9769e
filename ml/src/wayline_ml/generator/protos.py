"""Generated events as `wayline.event.v1.Event` messages, and sending them through the gateway with the
Python client (`wayline.client`), so they take the real path: gateway, ingest's validation and spool,
identity's stitching, the journey store. One message is built per event here, which costs ~30 µs: this path
is for populations the API should see, not for bulk files (files.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from google.protobuf import struct_pb2, timestamp_pb2

from wayline.client import Client, money
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_ml.generator.events import uuid_strings
from wayline_ml.generator.identifiers import anonymous_id, email, user_id
from wayline_ml.generator.population import Population
from wayline_ml.generator.texts import TEXTS
from wayline_ml.generator.vocabulary import ACTIONS, CHANNELS, KINDS, Channel

__all__ = ["CURRENCY", "event_batches", "send", "to_events"]

CURRENCY = "EUR"
_CHANNEL = [event_pb2.Channel.Value(f"CHANNEL_{name.upper()}") for name in CHANNELS]
_TRACK, _IDENTIFY = event_pb2.EVENT_TYPE_TRACK, event_pb2.EVENT_TYPE_IDENTIFY
_PAGE, _SCREEN = event_pb2.EVENT_TYPE_PAGE, event_pb2.EVENT_TYPE_SCREEN


def _type(kind: int, channel: int) -> event_pb2.EventType.ValueType:
    call = KINDS[kind].call
    if call == "identify":
        return _IDENTIFY
    if call == "view":
        return _SCREEN if channel == Channel.MOBILE_APP else _PAGE
    return _TRACK


def _timestamp(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def to_events(population: Population, start: int = 0, stop: int | None = None) -> Iterator[event_pb2.Event]:
    """The events in rows [start, stop) as messages, in time order."""
    e, people, prefix = population.events, population.people, population.config.prefix
    stop = len(e) if stop is None else min(stop, len(e))
    ids = uuid_strings(e.event_id[start:stop])
    for offset, row in enumerate(range(start, stop)):
        person, kind, channel = int(e.person[row]), int(e.kind[row]), int(e.channel[row])
        french = bool(people.french[person])
        identifiers = []
        if e.device[row] >= 0:
            identifiers.append(
                event_pb2.Identifier(type="anonymous_id", value=anonymous_id(prefix, int(e.device[row])))
            )
        if e.identified[row]:
            identifiers.append(event_pb2.Identifier(type="user_id", value=user_id(prefix, person)))
        if e.email_variant[row] >= 0:
            identifiers.append(
                event_pb2.Identifier(type="email", value=email(prefix, person, int(e.email_variant[row])))
            )
        properties = struct_pb2.Struct()
        if e.sku[row] >= 0:
            properties.update({"sku": f"SKU-{int(e.sku[row]):04d}", "price": float(e.price[row])})
        if not np.isnan(e.cart_value[row]):
            properties["cart_value"] = float(e.cart_value[row])
        if e.action[row] >= 0:
            properties.update(
                {"action": ACTIONS[e.action[row]], "decision_id": f"{prefix}-x{int(e.decision[row])}"}
            )
        if not np.isnan(e.propensity[row]):
            properties["propensity"] = float(e.propensity[row])
        if KINDS[kind].call == "identify":
            properties["locale"] = "fr-FR" if french else "en-GB"
        event = event_pb2.Event(
            event_id=str(ids[offset]),
            type=_type(kind, channel),
            name=KINDS[kind].name,
            channel=_CHANNEL[channel],
            timestamp=_timestamp(int(e.time_us[row])),
            identifiers=identifiers,
            properties=properties,
            text=TEXTS[e.text[row]] if e.text[row] >= 0 else "",
            context=event_pb2.EventContext(
                locale="fr-FR" if french else "en-GB",
                session_id=f"{prefix}-s{int(e.session[row])}" if e.session[row] >= 0 else "",
            ),
        )
        if not np.isnan(e.revenue[row]):
            event.revenue.CopyFrom(money(f"{e.revenue[row]:.2f}", CURRENCY))
        yield event


def event_batches(population: Population, size: int = 500) -> Iterator[ingest_pb.TrackBatchRequest]:
    """TrackBatch requests of `size` events (ingest accepts at most 1,000), in time order."""
    for start in range(0, len(population.events), size):
        yield ingest_pb.TrackBatchRequest(events=list(to_events(population, start, start + size)))


def send(
    population: Population,
    client: Client,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send every event through `client` in time order (so identify events reach identity before the events
    that follow them), each batch acknowledged before the next; returns how many the server rejected.
    `progress` is called with the number of events of each acknowledged batch."""
    rejected = 0
    for start in range(0, len(population.events), batch_size):
        events = list(to_events(population, start, start + batch_size))
        response = client.send(events, backfill=True)
        rejected += len(response.rejections)
        if progress is not None:
            progress(len(events))
    return rejected
