"""Reading many tenants' override feed heads in one go (ADR 95): over a real socket to a real identity, in
calls of HEADS_PER_CALL tenants, each head what that tenant's ListPersonOverrides says; None from an identity
that does not serve the call (a rolling upgrade); and FeedHeads telling which feeds moved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from wayline.common.clients import internal_channel
from wayline.common.context import TENANT_HEADER
from wayline.common.override_heads import HEADS_PER_CALL, FeedHeads, read_override_heads
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc


@pytest.fixture
def identity(identity_server: Server) -> Iterator[identity_grpc.IdentityServiceStub]:
    channel = internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN)
    yield identity_grpc.IdentityServiceStub(channel)
    channel.close()


def _merge_two_profiles(identity: identity_grpc.IdentityServiceStub, tenant: str) -> None:
    def resolve(event_id: str, *values: str) -> identity_pb.IdentityResolutionInput:
        item = identity_pb.IdentityResolutionInput(
            event_id=event_id,
            event_type=event_pb2.EVENT_TYPE_TRACK,
            identifiers=[event_pb2.Identifier(type="anonymous_id", value=v) for v in values],
        )
        item.timestamp.GetCurrentTime()
        return item

    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[resolve("e1", "a"), resolve("e2", "b"), resolve("e3", "a", "b")]
    )
    identity.ResolveIdentities(request, metadata=((TENANT_HEADER, tenant),), timeout=10)


def test_heads_of_more_tenants_than_one_call_takes_are_each_tenants_own(
    identity: identity_grpc.IdentityServiceStub,
) -> None:
    prefix = uuid.uuid4().hex[:8]
    merged = [f"{prefix}-merged-{i}" for i in range(3)]
    for tenant in merged:
        _merge_two_profiles(identity, tenant)
    idle = [f"{prefix}-idle-{i}" for i in range(2 * HEADS_PER_CALL)]
    # The merged tenants in the first, second and third call.
    tenants = [merged[0], *idle[:HEADS_PER_CALL], merged[1], *idle[HEADS_PER_CALL:], merged[2]]

    heads = read_override_heads(identity, tenants, timeout=10)

    assert heads is not None
    assert set(heads) == set(tenants)
    for tenant in merged:
        feed = identity.ListPersonOverrides(
            identity_pb.ListPersonOverridesRequest(), metadata=((TENANT_HEADER, tenant),), timeout=10
        )
        assert feed.max_version > 0
        assert heads[tenant] == feed.max_version
    assert all(heads[tenant] == 0 for tenant in idle)


def test_an_identity_without_the_call_gives_no_heads() -> None:
    older = grpc.server(futures.ThreadPoolExecutor(max_workers=2))  # no such method: UNIMPLEMENTED
    port = older.add_insecure_port("127.0.0.1:0")
    older.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = identity_grpc.IdentityServiceStub(channel)
            assert read_override_heads(stub, ["acme"], timeout=10) is None
    finally:
        older.stop(0)


def test_feed_heads_tell_which_feeds_moved_since_they_were_read() -> None:
    read = FeedHeads()
    assert read.moved(["a", "b"], {"a": 0, "b": 4}) == ["a", "b"]  # never read: both
    read.read_under("a", 0)
    read.read_under("b", 4)
    assert read.moved(["a", "b"], {"a": 0, "b": 4}) == []
    assert read.moved(["b", "a"], {"a": 2, "b": 4}) == ["a"]
    assert read.moved(["a", "b"], None) == ["a", "b"]  # heads unknown: every feed
    read.read_under("b", 3)  # a read under an older head does not undo a later one
    assert read.moved(["b"], {"b": 4}) == []
