"""Follows identity's override feed (IdentityService.ListPersonOverrides) into the online feature state, so
that a merged person's history reads under the survivor; acknowledges each tenant's cursor
(AcknowledgePersonOverrides, consumer `decision`) so identity's erasures can complete.

Each poll asks identity for the feed heads of every tenant the feature service follows (those it holds, and
those it remembered: every tenant an RPC brought to this process or, with the Redis state, to any replica;
OnlineFeatures.remember) in one call (GetOverrideFeedHeads, ADR 95); for each tenant whose head passed the
head its feed was last read under, the follower reads the feed after the tenant's cursor page by page and
applies each page (`OnlineFeatures.apply_overrides`, which logs it with the state's other changes, so the
cursor survives a restart with the state it describes). A failed poll doubles the wait, up to ten polls; no
error ends the thread, `stop` does. Replaying a page is harmless: versions at or below the cursor are
skipped.

Other state of this process keyed by person (the traces' cached identifiers and recent traces,
traces/forgetting.py) listens (`add_listener`): each page goes to every listener after the online state took
it and before the cursor is acknowledged, and the tenants a listener holds are followed too.

The gRPC side is `IdentityOverrideFeed`; the loop is the kit's (wayline.common.feed_follower), as the
orchestrator's is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import grpc
import structlog

from wayline.common.context import TENANT_HEADER
from wayline.common.feed_follower import FeedFollower, HeadsFeed
from wayline.common.override_heads import read_override_heads
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline_decision.features.service import OnlineFeatures

__all__ = ["CONSUMER", "IdentityOverrideFeed", "OverrideFeed", "OverrideFollower", "OverrideListener"]

log = structlog.get_logger("wayline.decision.features")

CONSUMER = "decision"
"""The name the decision service acknowledges the feed under."""


class OverrideFeed(HeadsFeed, Protocol):
    def page(
        self, tenant: str, after_version: int, page_token: str
    ) -> tuple[Sequence[person_override_pb2.PersonOverride], str]: ...


class OverrideListener(Protocol):
    def tenant_names(self) -> Iterable[str]:
        """Tenants whose feed the listener needs, besides those the online state holds."""
        ...

    def apply_overrides(self, tenant: str, overrides: Sequence[person_override_pb2.PersonOverride]) -> None:
        """Take a page of the feed (a page may come again: applying it twice must be harmless)."""
        ...


class IdentityOverrideFeed:
    """Owns `channel`: `close` closes it (a call in progress ends at once)."""

    def __init__(self, channel: grpc.Channel, *, page_size: int = 1000, timeout_s: float = 10.0) -> None:
        self._channel = channel
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._page_size = page_size
        self._timeout = timeout_s

    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        return read_override_heads(self._stub, tenants, timeout=self._timeout)

    def page(
        self, tenant: str, after_version: int, page_token: str
    ) -> tuple[Sequence[person_override_pb2.PersonOverride], str]:
        request = identity_pb.ListPersonOverridesRequest(
            after_version=after_version, page_size=self._page_size, page_token=page_token
        )
        response: identity_pb.ListPersonOverridesResponse = self._stub.ListPersonOverrides(
            request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
        )
        return response.person_overrides, response.next_page_token

    def acknowledge(self, tenant: str, applied_version: int) -> None:
        request = identity_pb.AcknowledgePersonOverridesRequest(
            consumer=CONSUMER, applied_version=applied_version
        )
        self._stub.AcknowledgePersonOverrides(
            request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
        )

    def close(self) -> None:
        self._channel.close()


class OverrideFollower(FeedFollower):
    def __init__(self, feed: OverrideFeed, features: OnlineFeatures, *, poll_seconds: float) -> None:
        super().__init__(
            feed, poll_seconds=poll_seconds, thread_name="decision-override-feed", log=log, events="features"
        )
        self._feed = feed
        self._features = features
        self._listeners: list[OverrideListener] = []

    def add_listener(self, listener: OverrideListener) -> None:
        """Before `start`."""
        self._listeners.append(listener)

    def tenant_names(self) -> list[str]:
        names = set(self._features.tenant_names())
        for listener in self._listeners:
            names.update(listener.tenant_names())
        return sorted(names)

    def read(self, tenant: str) -> int:
        start = self._features.cursor(tenant)
        token = ""
        while not self.stopping:
            overrides, token = self._feed.page(tenant, start, token)
            if overrides:
                self._features.apply_overrides(tenant, overrides)
                for listener in self._listeners:
                    listener.apply_overrides(tenant, overrides)
            if not token or not overrides:
                break
        return self._features.cursor(tenant)
