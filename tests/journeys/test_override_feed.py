"""Journeys follows identity's override feed, over real sockets: a real identity server (SQLite) and a
journeys server (chDB) whose follower polls it. No ingest runs, so every change identity makes reaches
journeys through the feed only: merges made by resolution or by an administrator, unmerges, and erasures."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.journeys.conftest import T0, Journeys, ids, stored_event
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_journeys.follower import FeedUnavailable
from wayline_journeys.identity_feed import IdentityOverrideFeed
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings

T = TypeVar("T")
Key = tuple[str, str]


@dataclass
class Servers:
    identity: Server
    journeys: Server


@pytest.fixture(scope="module")
def servers(
    journeys_server: Server, suite_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    identity_settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-feed")),  # type: ignore[arg-type]
        # Identity does not call DeletePersonEvents: journeys erases only through the feed's markers, and an
        # erasure completes once journeys has acknowledged the feed past them.
        journeys_address="",
        ingest_address="",
        erasure_feed_consumers=["journeys"],
        erasure_retry_seconds=0.1,
    )
    identity = start_server(identity_service(identity_settings), identity_settings)
    # The process has one chDB engine (the suite journeys server's path); this server has its own database.
    journeys_settings = JourneysSettings(
        **common_settings(suite_data_dir),  # type: ignore[arg-type]
        clickhouse_database=f"feed_{uuid.uuid4().hex[:8]}",
        identity_address=identity.address,
        override_poll_seconds=0.05,
    )
    journeys = start_server(journeys_service(journeys_settings), journeys_settings)
    yield Servers(identity, journeys)
    journeys.stop(0)
    identity.stop(0)


class Identity:
    """IdentityService as internal callers use it, for one tenant."""

    def __init__(self, channel: grpc.Channel, tenant: str) -> None:
        self.stub = identity_grpc.IdentityServiceStub(channel)
        self.metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))
        self._events = 0

    def resolve(self, *identifiers: Key) -> str:
        """The person of one event carrying `identifiers` (merging the profiles holding them)."""
        self._events += 1
        request = identity_pb.ResolveIdentitiesRequest(
            inputs=[
                identity_pb.IdentityResolutionInput(
                    event_id=str(uuid.uuid4()),
                    timestamp=to_timestamp(T0),
                    event_type=event_pb2.EVENT_TYPE_TRACK,
                    identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
                )
            ]
        )
        response: identity_pb.ResolveIdentitiesResponse = self.stub.ResolveIdentities(
            request, metadata=self.metadata, timeout=10
        )
        return response.resolutions[0].person_id

    def merge(self, *persons: str) -> str:
        response: identity_pb.MergeProfilesResponse = self.stub.MergeProfiles(
            identity_pb.MergeProfilesRequest(person_ids=persons, reason="support ticket 42"),
            metadata=self.metadata,
            timeout=10,
        )
        return response.profile.person_id

    def unmerge(self, person: str, identifier: Key) -> str:
        response: identity_pb.UnmergeIdentifierResponse = self.stub.UnmergeIdentifier(
            identity_pb.UnmergeIdentifierRequest(
                person_id=person,
                identifier=event_pb2.Identifier(type=identifier[0], value=identifier[1]),
                reason="shared laptop",
            ),
            metadata=self.metadata,
            timeout=10,
        )
        return response.new_profile.person_id

    def delete(self, person: str) -> identity_pb.DeleteProfileResponse:
        response: identity_pb.DeleteProfileResponse = self.stub.DeleteProfile(
            identity_pb.DeleteProfileRequest(person_id=person, reason="erasure request 7"),
            metadata=self.metadata,
            timeout=10,
        )
        return response

    def erasure_step(self, erasure_id: str, store: str) -> identity_pb.ErasureStep:
        response: identity_pb.GetErasureResponse = self.stub.GetErasure(
            identity_pb.GetErasureRequest(erasure_id=erasure_id), metadata=self.metadata, timeout=10
        )
        (step,) = [s for s in response.erasure.steps if s.store == store]
        return step


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def identity(servers: Servers, tenant: str) -> Iterator[Identity]:
    with grpc.insecure_channel(servers.identity.address) as channel:
        yield Identity(channel, tenant)


@pytest.fixture
def journeys(servers: Servers, tenant: str) -> Iterator[Journeys]:
    with grpc.insecure_channel(servers.journeys.address) as channel:
        yield Journeys(channel, tenant)


def eventually(read: Callable[[], T], expected: T, timeout: float = 5.0) -> None:
    """Wait until `read()` returns `expected`; fail with the last value read."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"still {value!r} after {timeout}s, expected {expected!r}")
        time.sleep(0.05)


A, B, C = ("anonymous_id", "feed-a"), ("anonymous_id", "feed-b"), ("user_id", "feed-c")


def test_journeys_follows_merges_and_unmerges_made_in_identity(
    identity: Identity, journeys: Journeys
) -> None:
    p, q = identity.resolve(A), identity.resolve(B)
    # Written after resolution, with the person ids identity gave, as the forwarder does.
    of_p = journeys.write(stored_event(p, A, minute=0))
    of_q = journeys.write(stored_event(q, B, minute=1))

    def timeline(person: str) -> list[str]:
        return sorted(ids(journeys.timeline(person)))

    # An event carrying both joins the profiles (the older one, P, survives).
    assert identity.resolve(A, B) == p
    eventually(lambda: timeline(p), sorted(ids(of_p + of_q)))
    assert timeline(q) == []

    # An administrator moves B out into a new profile R: the event carrying B follows it.
    r = identity.unmerge(p, B)
    eventually(lambda: timeline(r), ids(of_q))
    assert timeline(p) == ids(of_p)

    # And merges them again by hand.
    assert identity.merge(p, r) == p
    eventually(lambda: timeline(p), sorted(ids(of_p + of_q)))
    assert timeline(r) == []


def test_journeys_erases_on_the_feeds_markers_and_acknowledges_them(
    identity: Identity, journeys: Journeys
) -> None:
    p, q, bystander = identity.resolve(A), identity.resolve(B), identity.resolve(C)
    journeys.write(stored_event(p, A, minute=0), stored_event(q, B, minute=1))
    kept = journeys.write(stored_event(bystander, C, minute=2))
    assert identity.resolve(A, B) == p  # Q merged into P: erasing P erases Q too

    erasure = identity.delete(p).erasure
    assert sorted(erasure.person_ids) == sorted([p, q])

    eventually(lambda: len(journeys.timeline(p)) + len(journeys.timeline(q)), 0)
    assert ids(journeys.timeline(bystander)) == ids(kept)
    # Identity completes journeys' step once journeys acknowledged the feed past the erasure's markers.
    eventually(
        lambda: identity.erasure_step(erasure.erasure_id, "journeys").state, identity_pb.ERASURE_STATE_DONE
    )


def test_the_feed_closed_by_the_followers_stop_is_unavailable_not_a_crash(servers: Servers) -> None:
    """`stop` closes the channel while the follower may still call through it: the call is refused as the
    feed unavailable (quiet while stopping), where it was a segmentation fault (ADR 98)."""
    feed = IdentityOverrideFeed(internal_channel(servers.identity.address, internal_token=INTERNAL_TOKEN))
    assert feed.heads(["acme"]) is not None  # open: identity answers
    feed.close()
    with pytest.raises(FeedUnavailable, match="closed"):
        feed.heads(["acme"])
    with pytest.raises(FeedUnavailable, match="closed"):
        feed.acknowledge("acme", 1)
    with pytest.raises(FeedUnavailable, match="closed"):
        feed.page("acme", 0, "")
