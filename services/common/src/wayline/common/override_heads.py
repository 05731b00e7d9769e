"""Which tenants' override feeds moved since a follower last read them (ADR 95).

Journeys, decision, the orchestrator and the gateway each follow identity's override feed for every tenant
they keep anything of. Asking each tenant's feed on every poll cost a call per tenant per poll when nearly
every feed is idle; instead a follower asks identity for all its tenants' heads in one call
(IdentityService.GetOverrideFeedHeads) and pages only the feeds whose head passed the head they were last read
to the end under. A head only grows and every override at or below it is committed when it is read, so a feed
read to its end after its head H was read holds nothing at or below H that the follower has not seen.

`read_override_heads` is the call (chunked; None from an identity that predates it, so a follower reads every
feed as before during a rolling upgrade); `FeedHeads` remembers the head each feed was last read under.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

import grpc

from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc

__all__ = ["HEADS_PER_CALL", "FeedHeads", "read_override_heads"]

HEADS_PER_CALL = 1_000
"""Tenants per call: identity takes up to 10,000; smaller calls keep each answer quick under a deadline."""


def read_override_heads(
    stub: identity_grpc.IdentityServiceStub, tenants: Sequence[str], *, timeout: float
) -> dict[str, int] | None:
    """Each tenant's feed head, in calls of HEADS_PER_CALL tenants made without a tenant in metadata (the
    channel adds the internal token); None when identity does not serve the call yet. Other errors raise
    grpc.RpcError."""
    heads: dict[str, int] = {}
    names = list(dict.fromkeys(tenants))
    for start in range(0, len(names), HEADS_PER_CALL):
        request = identity_pb.GetOverrideFeedHeadsRequest(tenants=names[start : start + HEADS_PER_CALL])
        try:
            response: identity_pb.GetOverrideFeedHeadsResponse = stub.GetOverrideFeedHeads(
                request, timeout=timeout
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise
        heads.update((head.tenant, head.max_version) for head in response.heads)
    return heads


class FeedHeads:
    """The head under which each tenant's feed was last read to its end, by one follower. Thread-safe."""

    def __init__(self) -> None:
        self._read_under: dict[str, int] = {}
        self._lock = threading.Lock()

    def moved(self, tenants: Iterable[str], heads: Mapping[str, int] | None) -> list[str]:
        """The tenants, in their order, whose feed may hold overrides the follower has not read: its head is
        above the one it was last read under, or it was never read, or the heads are unknown (None)."""
        with self._lock:
            if heads is None:
                return list(tenants)
            return [
                tenant
                for tenant in tenants
                if tenant not in self._read_under or heads.get(tenant, 0) > self._read_under[tenant]
            ]

    def read_under(self, tenant: str, head: int) -> None:
        """The tenant's feed was read to its end after its head was read as `head`."""
        with self._lock:
            self._read_under[tenant] = max(head, self._read_under.get(tenant, 0))
