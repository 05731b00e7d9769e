"""A stream of visits for the identity bench: the batches ingest's forwarder sends when it catches up on a
backlog or meets a peak, built from sessions rather than from one event per person.

A session is one person's visit: `SESSION_EVENTS_MEAN` events on average by default (geometric; the page
views and tracks of a two-to-three-minute web visit), `GAP_MEAN_SECONDS` apart on average (exponential).
Every event carries the visitor's anonymous id and device id, as the SDKs send them. Sessions start evenly
over the run's event time, interleave, and reach identity in time order, in batches of `BATCH` sets. The
visitors are filled profiles last seen a day before that nothing earlier in the run met (the harsh case:
every session's first event writes new seen times). `NEW_SHARE` of the sessions are new visitors (new
ids), and `LOGIN_SHARE` log in at a random event (an identify adding a user id, carried by the later events
too). A mean of 1 event a session gives the day-later batches' shape: one event per person.

The events of the first `WARMUP_SECONDS` go first, untimed, so that the timed window meets sessions already
under way, as a running stream does, rather than only starts.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as pb

BATCH = 1000
SESSION_EVENTS_MEAN = 12.0
GAP_MEAN_SECONDS = 15.0
NEW_SHARE = 0.1
LOGIN_SHARE = 0.1
WARMUP_SECONDS = 600
MEASURED_SECONDS = 600

Ids = tuple[tuple[str, str], ...]


class Stream(NamedTuple):
    """Serialised `ResolveIdentitiesRequest`s: the warm-up window's, then the timed window's; how many sets
    the timed ones hold, and how many of those sets write seen times under the server's granularity."""

    warmup: list[bytes]
    measured: list[bytes]
    measured_sets: int
    measured_writes: int


class Visits(NamedTuple):
    """The shape of a visit: events on average (geometric) and seconds between two (exponential)."""

    events: float = SESSION_EVENTS_MEAN
    gap_seconds: float = GAP_MEAN_SECONDS


TYPICAL_VISITS = Visits()


class _Event(NamedTuple):
    at: int  # microseconds
    event_id: str
    person: str  # the bench's key for the visitor (writes are counted per person)
    identify: bool
    ids: Ids


def _session(rng: random.Random, n: int, known: int | None, start: int, visits: Visits) -> list[_Event]:
    """Session `n` from `start` (µs), of the filled profile `known` or, if None, of a new visitor."""
    count = 1 + int(math.log(1 - rng.random()) / math.log(1 - 1 / visits.events)) if visits.events > 1 else 1
    ids: Ids
    if known is None:
        person, ids = f"new-{n}", (("anonymous_id", f"s{n}-a"), ("device_id", f"s{n}-d"))
    else:
        person, ids = str(known), (("anonymous_id", f"a{known}"), ("device_id", f"d{known}"))
    login = rng.randrange(count) if rng.random() < LOGIN_SHARE else -1
    events, at = [], start
    for i in range(count):
        if i == login:
            ids = (("user_id", f"login-s{n}"), *ids)
        events.append(_Event(at, f"s{n}-{i}", person, i == login, ids))
        at += int(rng.expovariate(1 / visits.gap_seconds) * 1_000_000)
    return events


def session_stream(
    people: range,
    now: int,
    batches: int,
    granularity_seconds: float,
    visits: Visits = TYPICAL_VISITS,
) -> Stream:
    """The stream from `now` (µs, the fill's time) of visitors drawn from the filled profiles `people` (each
    at most once while they last) and new ones: `batches` timed batches of `BATCH` sets after the warm-up
    window (fewer if the window holds fewer events), of visits shaped by `visits`."""
    rng = random.Random(len(people) + 7)
    # Enough sessions for the timed window to hold `batches` full batches at the steady rate, with a margin.
    span = WARMUP_SECONDS + MEASURED_SECONDS
    sessions = int(batches * BATCH / MEASURED_SECONDS / visits.events * 1.2 * span)
    visitors = rng.sample(people, min(sessions, len(people)))
    events = sorted(
        (
            event
            for n in range(sessions)
            for event in _session(
                rng,
                n,
                None if rng.random() < NEW_SHARE else visitors[n % len(visitors)],
                now + int(rng.uniform(0, span) * 1_000_000),
                visits,
            )
        ),
        key=lambda event: event.at,
    )
    boundary = now + WARMUP_SECONDS * 1_000_000
    warmup = [event for event in events if event.at < boundary]
    measured = [event for event in events if event.at >= boundary][: batches * BATCH]
    granularity = int(granularity_seconds * 1_000_000)
    written: dict[str, int] = {}  # person → time of the last seen-time write
    writes = 0
    for index, event in enumerate(warmup + measured):
        last = written.get(event.person)
        if last is None or event.at >= last + granularity or event.identify:
            written[event.person] = event.at
            writes += index >= len(warmup)
    return Stream(_requests(warmup), _requests(measured), len(measured), writes)


def _requests(events: list[_Event]) -> list[bytes]:
    return [
        pb.ResolveIdentitiesRequest(
            inputs=[
                pb.IdentityResolutionInput(
                    event_id=event.event_id,
                    timestamp=to_timestamp(from_micros(event.at)),
                    event_type=(
                        event_pb2.EVENT_TYPE_IDENTIFY if event.identify else event_pb2.EVENT_TYPE_TRACK
                    ),
                    identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in event.ids],
                )
                for event in events[start : start + BATCH]
            ]
        ).SerializeToString()
        for start in range(0, len(events), BATCH)
    ]
