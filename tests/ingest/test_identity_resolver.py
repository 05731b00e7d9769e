"""The forwarder's identity resolver, against a real identity service: every sink reads the same events, and
one sink's ResolveIdentities call serves the others (each event resolved once, not once per sink), merges'
person overrides included, so that the journey store hears of a merge whichever sink's call made it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.ingest.test_dead_letters_fixtures import Requeued
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.common.sql import open_database
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline_identity.converters import MAX_IDENTIFIER_TYPE
from wayline_ingest.deadletters import DeadLetterFilter, DeadLetters
from wayline_ingest.delivery import Deliverer, DeliveryPolicy
from wayline_ingest.sinks.base import PermanentDeliveryError
from wayline_ingest.sinks.identity import IdentityResolver, ResolvingSink


@pytest.fixture
def channel(identity_server: Server) -> Iterator[grpc.Channel]:
    opened = internal_channel(
        identity_server.address,
        internal_token=INTERNAL_TOKEN,
        services=[identity_pb.DESCRIPTOR.services_by_name["IdentityService"]],
    )
    yield opened
    opened.close()


@pytest.fixture
def tenant() -> str:
    return f"resolver-{uuid.uuid4().hex[:8]}"


def event(*identifiers: tuple[str, str], identify: bool = False) -> bytes:
    made = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_IDENTIFY if identify else event_pb2.EVENT_TYPE_TRACK,
        name="" if identify else "Product Viewed",
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[event_pb2.Identifier(type=kind, value=value) for kind, value in identifiers],
    )
    return made.SerializeToString()


def person(resolved: bytes) -> str:
    return event_pb2.Event.FromString(resolved).person_id


def test_one_call_serves_every_sink(channel: grpc.Channel, tenant: str) -> None:
    resolver = IdentityResolver(channel)
    events = [event(("anonymous_id", f"anon-{i}")) for i in range(5)]
    first, _ = resolver.resolve(tenant, events)
    again = [resolver.resolve(tenant, list(events))[0] for _ in range(2)]  # the other two sinks
    assert resolver.calls == 1
    assert all(person(resolved) for resolved in first)
    assert again == [first, first]
    no_identifiers = event_pb2.Event(event_id="x", name="Ping").SerializeToString()
    assert resolver.resolve(tenant, [no_identifiers]) == ([no_identifiers], [])
    assert resolver.calls == 1


def test_two_sinks_woken_together_make_one_call(channel: grpc.Channel, tenant: str) -> None:
    resolver = IdentityResolver(channel)
    events = [event(("anonymous_id", f"anon-{i}")) for i in range(200)]
    results: list[list[bytes]] = []

    def deliver() -> None:
        results.append(resolver.resolve(tenant, events)[0])

    sinks = [threading.Thread(target=deliver) for _ in "ab"]
    for sink in sinks:
        sink.start()
    for sink in sinks:
        sink.join(30)
    assert resolver.calls == 1
    assert results[0] == results[1]


def test_a_merges_overrides_reach_the_sink_that_did_not_make_the_call(
    channel: grpc.Channel, tenant: str
) -> None:
    """Decision's sink resolves first and its call merges two profiles; the journey store's sink, later, gets
    the merge's overrides too (asking identity again would return none: the merge is done)."""
    resolver = IdentityResolver(channel)
    resolver.resolve(tenant, [event(("anonymous_id", "phone")), event(("anonymous_id", "laptop"))])
    logins = [
        event(("anonymous_id", "phone"), ("user_id", "u-1"), identify=True),
        event(("anonymous_id", "laptop"), ("user_id", "u-1"), identify=True),
    ]
    resolved, made = resolver.resolve(tenant, logins)  # decision's sink
    assert made, "logging in on both devices merges their profiles"
    assert person(resolved[0]) == person(resolved[1])
    journeys_resolved, journeys_overrides = resolver.resolve(tenant, list(logins))
    assert (journeys_resolved, journeys_overrides) == (resolved, made)
    fresh = IdentityResolver(channel)  # no cache: what a sink asking identity again gets
    assert fresh.resolve(tenant, list(logins))[1] == []


def test_a_sink_too_far_behind_resolves_again(channel: grpc.Channel, tenant: str) -> None:
    resolver = IdentityResolver(channel, cached=2)
    oldest, *newer = [event(("anonymous_id", f"anon-{i}")) for i in range(3)]
    first, _ = resolver.resolve(tenant, [oldest])
    resolver.resolve(tenant, newer)
    assert resolver.calls == 2
    assert resolver.resolve(tenant, [oldest])[0] == first  # evicted: asked again, the same person
    assert resolver.calls == 3


def test_the_cache_is_bounded_by_bytes_too(channel: grpc.Channel, tenant: str) -> None:
    """Events may be large (32 KiB each by default): the cache keeps at most `cached_bytes` of them."""
    resolver = IdentityResolver(channel, cached_bytes=1)  # less than any event: nothing is kept
    sent = event(("anonymous_id", "anon-big"))
    first, _ = resolver.resolve(tenant, [sent])
    assert resolver.resolve(tenant, [sent])[0] == first
    assert resolver.calls == 2


def test_an_event_twice_in_one_delivery_counts_once_against_the_bound(
    channel: grpc.Channel, tenant: str
) -> None:
    first, second = event(("anonymous_id", "anon-a")), event(("anonymous_id", "anon-b"))
    probe = IdentityResolver(channel)
    resolved, _ = probe.resolve(tenant, [first, second])
    room = len(first) + len(resolved[0]) + len(second) + len(resolved[1])  # both, exactly
    resolver = IdentityResolver(channel, cached_bytes=room)
    resolver.resolve(tenant, [first, first])
    resolver.resolve(tenant, [second])
    calls = resolver.calls
    resolver.resolve(tenant, [first, second])
    assert resolver.calls == calls  # both still kept: the first was not counted twice


class Taken:
    """A sink after the resolver that takes every event (what journeys would store)."""

    name = "taken"

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        self.events += events

    def close(self) -> None:
        pass


REFUSED_TYPE = "t" * (MAX_IDENTIFIER_TYPE + 1)  # identity refuses it: longer than the contract allows


def test_identity_refusing_an_input_names_the_event_by_its_place_in_the_delivery(
    channel: grpc.Channel, tenant: str
) -> None:
    resolver = IdentityResolver(channel)
    known = event(("anonymous_id", "anon-known"))
    resolver.resolve(tenant, [known])  # kept: the next call asks identity for the three others only
    refused = event((REFUSED_TYPE, "x"))
    with pytest.raises(PermanentDeliveryError) as raised:
        resolver.resolve(
            tenant, [known, event(("anonymous_id", "anon-1")), refused, event(("email", "a@b.c"))]
        )
    failure = raised.value.failure
    assert failure.code == "INVALID_ARGUMENT"
    assert failure.index == 2  # identity said inputs[1]: the second event it was asked about
    assert failure.field == "events[2].identifiers[0].type"


def test_a_refused_event_is_parked_in_one_more_call_and_the_rest_delivered_in_order(
    channel: grpc.Channel, tenant: str, tmp_path: Path
) -> None:
    resolver = IdentityResolver(channel)
    events = [event(("anonymous_id", f"anon-{i}")) for i in range(8)]
    events[5] = event((REFUSED_TYPE, "x"))
    taken = Taken()
    database = open_database(None, tmp_path / "dead-letters.db")
    parked = DeadLetters(database, Requeued())
    parked.migrate()
    deliverer = Deliverer(ResolvingSink(taken, resolver), DeliveryPolicy(), parked, threading.Event())
    assert deliverer.deliver(tenant, events)
    # The call that failed, then the events before the refused one and those after it: halving the
    # delivery until the event stands alone took seven.
    assert resolver.calls == 3
    assert [event_pb2.Event.FromString(e).event_id for e in taken.events] == [
        event_pb2.Event.FromString(e).event_id for e in events[:5] + events[6:]
    ]
    assert all(person(e) for e in taken.events)
    page = parked.list(tenant, DeadLetterFilter(), 10)
    assert [(d.payload, d.sink, d.error_field) for d in page.dead_letters] == [
        (events[5], "taken", "events[5].identifiers[0].type")
    ]
    database.close()
