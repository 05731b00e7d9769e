"""Person merges through the real identity service's override feed: the merged person's online features move
to the survivor, whose reads then equal journeys' (which follows the same feed); an unmerge leaves both
persons to journeys; an erasure forgets the person. Each runs on a decision service with the in-process state
and on one with the state in a real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from tests.decision.features.online import (
    SETTLE_AFTER_S,
    Rig,
    decision_settings,
    event,
    eventually,
    metadata,
    new_tenant,
    now_us,
    running,
    spec,
)
from tests.redis import redis_url  # noqa: F401 - the session's server, for the Redis rig
from wayline.common.server import Server
from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_decision.features.reader import FeatureOrigin

SPEC = spec()


@pytest.fixture(scope="module", params=["in_process", pytest.param("redis", marks=pytest.mark.slow)])
def rig(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    journeys_server: Server,
    identity_server: Server,
) -> Iterator[Rig]:
    """A decision service with the in-process state, or with the state in the session's real Redis."""
    shared: dict[str, Any] = {}
    if request.param == "redis":
        shared = {"feature_state": "redis", "redis_url": SecretStr(request.getfixturevalue("redis_url"))}
    directory = tmp_path_factory.mktemp("merges")
    settings = decision_settings(directory, journeys_server, identity_server, **shared)
    with running(settings, journeys_server) as found:
        yield found


@pytest.fixture
def identity(identity_server: Server, ingest_server: Server) -> Iterator[identity_grpc.IdentityServiceStub]:
    """The suite's identity. Its erasures dial the suite's ingest, which must be listening first: a dial to
    a port nobody listens on yet puts gRPC's process-wide subchannel for that address into backoff, and every
    later channel to it (the suite gateway's to ingest) fails fast until the backoff ends."""
    del ingest_server
    with grpc.insecure_channel(identity_server.address) as channel:
        yield identity_grpc.IdentityServiceStub(channel)


def _person(identity: identity_grpc.IdentityServiceStub, tenant: str, email: str) -> str:
    """A person identity knows, created by resolving an event that carries `email`."""
    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[
            identity_pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                timestamp=to_timestamp(from_micros(now_us())),
                event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                identifiers=[event_pb2.Identifier(type="email", value=email)],
            )
        ]
    )
    response = identity.ResolveIdentities(request, metadata=metadata(tenant), timeout=10)
    return str(response.resolutions[0].person_id)


def _with_email(found: event_pb2.Event, email: str) -> event_pb2.Event:
    del found.identifiers[:]
    found.identifiers.add(type="email", value=email)
    return found


def test_a_merge_moves_the_merged_persons_features_to_the_survivor(
    rig: Rig, identity: identity_grpc.IdentityServiceStub
) -> None:
    tenant = new_tenant("merge")
    first_email, second_email = (
        f"a-{uuid.uuid4().hex[:6]}@example.com",
        f"b-{uuid.uuid4().hex[:6]}@example.com",
    )
    first, second = _person(identity, tenant, first_email), _person(identity, tenant, second_email)
    rig.runtime.features.register(tenant, SPEC, now_us())
    time.sleep(SETTLE_AFTER_S)
    rig.feed(
        tenant,
        _with_email(event(first, hours_ago=40, price=2.0, plan="basic"), first_email),
        _with_email(event(first, hours_ago=5, price=1.0), first_email),
        _with_email(event(second, hours_ago=30, price=8.0, plan="pro"), second_email),
        _with_email(event(second, hours_ago=3, tier="gold"), second_email),
    )
    as_of = now_us()
    assert rig.read_online(tenant, SPEC, first, as_of).values[0] == 2.0
    assert rig.read_online(tenant, SPEC, second, as_of).values[0] == 2.0

    merged = identity.MergeProfiles(
        identity_pb.MergeProfilesRequest(person_ids=[first, second], reason="same customer"),
        metadata=metadata(tenant),
        timeout=10,
    )
    survivor = merged.profile.person_id
    (absorbed,) = {first, second} - {survivor}
    version = max(o.version for o in merged.person_overrides)
    eventually(lambda: rig.runtime.features.cursor(tenant) >= version)  # the decision service followed
    later = now_us()
    eventually(lambda: rig.profile(tenant, SPEC, survivor, later)[0] == 4.0)  # and so did journeys

    assert not rig.runtime.states.for_tenant(tenant).holds(absorbed)  # moved, in Redis too
    read = rig.read(tenant, SPEC, survivor, later)
    assert read.origin is FeatureOrigin.ONLINE  # both were whole, so the survivor is
    assert read.values == rig.profile(tenant, SPEC, survivor, later)
    assert read.values[0] == 4.0
    assert read.values[2] == 1.0 + 2.0 + 8.0
    assert read.values[6] == "gold"
    gone = rig.read(tenant, SPEC, absorbed, later)
    assert gone.origin is FeatureOrigin.JOURNEYS
    assert gone.values == rig.profile(tenant, SPEC, absorbed, later)

    # New events resolve to the survivor and add to the moved history.
    rig.feed(tenant, _with_email(event(survivor, hours_ago=1, price=0.5), second_email))
    latest = now_us()
    read = rig.read(tenant, SPEC, survivor, latest)
    assert read.origin is FeatureOrigin.ONLINE
    assert read.values == rig.profile(tenant, SPEC, survivor, latest)

    # An unmerge splits events by identifier, which folded slots cannot: both persons go to journeys.
    unmerged = identity.UnmergeIdentifier(
        identity_pb.UnmergeIdentifierRequest(
            person_id=survivor,
            identifier=event_pb2.Identifier(type="email", value=second_email),
            reason="not the same customer after all",
        ),
        metadata=metadata(tenant),
        timeout=10,
    )
    version = max(o.version for o in unmerged.person_overrides)
    eventually(lambda: rig.runtime.features.cursor(tenant) >= version)
    after = now_us()
    for person in (unmerged.profile.person_id, unmerged.new_profile.person_id):
        read = rig.read(tenant, SPEC, person, after)
        assert read.origin is FeatureOrigin.JOURNEYS, person
        assert rig.runtime.features.wait_for_verifications(60)
        assert rig.read(tenant, SPEC, person, after).origin is FeatureOrigin.JOURNEYS, person


def test_an_erased_person_is_forgotten(rig: Rig, identity: identity_grpc.IdentityServiceStub) -> None:
    tenant = new_tenant("erase")
    email = f"e-{uuid.uuid4().hex[:6]}@example.com"
    person = _person(identity, tenant, email)
    rig.runtime.features.register(tenant, SPEC, now_us())
    time.sleep(SETTLE_AFTER_S)
    rig.feed(tenant, _with_email(event(person, hours_ago=2, price=3.0), email))
    assert rig.read_online(tenant, SPEC, person, now_us()).values[0] == 1.0
    state = rig.runtime.states.for_tenant(tenant)
    assert state.holds(person)
    identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=person, reason="GDPR art. 17"),
        metadata=metadata(tenant),
        timeout=10,
    )
    eventually(lambda: not state.holds(person))
    assert rig.read(tenant, SPEC, person, now_us()).origin is FeatureOrigin.JOURNEYS
    # An event ingest resolved to the person just before the erasure, observed after it: left out.
    rig.feed(tenant, _with_email(event(person, hours_ago=1, price=4.0), email))
    assert not state.holds(person)
