"""Follows identity's override feed (IdentityService.ListPersonOverrides) into the orchestrator's state
(person_overrides.py), and acknowledges each tenant's cursor (AcknowledgePersonOverrides, consumer
`orchestrator`) so that identity's erasures can complete. The loop is the kit's
(wayline.common.feed_follower), as the decision service's is; this module holds the feed's gRPC side and how
a page reaches the state.

Each poll asks identity for the feed heads of every tenant the orchestrator keeps anything for in one call
(GetOverrideFeedHeads, ADR 95); for each tenant whose head passed the head its feed was last read under, the
follower reads the feed after the tenant's cursor page by page and applies each page; the cursor is stored
with the effects, so it survives a restart with the state it describes. A failed poll doubles the wait, up to
ten polls (30 s at most); no error ends the thread, `stop` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc
import structlog

from wayline.common.context import TENANT_HEADER
from wayline.common.feed_follower import FeedFollower, HeadsFeed
from wayline.common.override_heads import read_override_heads
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline_orchestrator.person_overrides import PersonOverride, PersonStates

__all__ = ["CONSUMER", "IdentityOverrideFeed", "OverrideFeed", "OverrideFollower", "override_of"]

log = structlog.get_logger("wayline.orchestrator")

CONSUMER = "orchestrator"
"""The name the orchestrator acknowledges the feed under (identity's `erasure_feed_consumers` lists it)."""


def override_of(message: person_override_pb2.PersonOverride) -> PersonOverride:
    return PersonOverride(
        person_id=message.person_id,
        override_person_id=message.override_person_id,
        version=message.version,
        scoped=message.HasField("identifier"),
        erased=message.erased,
    )


class OverrideFeed(HeadsFeed, Protocol):
    def page(self, tenant: str, after_version: int, page_token: str) -> tuple[list[PersonOverride], str]: ...


class IdentityOverrideFeed:
    """The feed over the peers' identity channel; `close` closes it (a call in progress ends at once, so a
    stopping server does not wait on identity; closing the channel again with the peers is harmless)."""

    def __init__(self, channel: grpc.Channel, *, page_size: int = 1000, timeout_s: float = 10.0) -> None:
        self._channel = channel
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._page_size = page_size
        self._timeout = timeout_s

    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        return read_override_heads(self._stub, tenants, timeout=self._timeout)

    def page(self, tenant: str, after_version: int, page_token: str) -> tuple[list[PersonOverride], str]:
        request = identity_pb.ListPersonOverridesRequest(
            after_version=after_version, page_size=self._page_size, page_token=page_token
        )
        response: identity_pb.ListPersonOverridesResponse = self._stub.ListPersonOverrides(
            request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
        )
        return [override_of(o) for o in response.person_overrides], response.next_page_token

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
    def __init__(self, feed: OverrideFeed, states: PersonStates, *, poll_seconds: float) -> None:
        super().__init__(
            feed, poll_seconds=poll_seconds, thread_name="flow-override-feed", log=log, events="flows"
        )
        self._feed = feed
        self._states = states

    def tenant_names(self) -> Sequence[str]:
        return self._states.tenant_names()

    def read(self, tenant: str) -> int:
        start = self._states.cursor(tenant)
        token = ""
        while not self.stopping:
            overrides, token = self._feed.page(tenant, start, token)
            if overrides:
                self._states.apply(tenant, overrides)
            if not token or not overrides:
                break
        return self._states.cursor(tenant)
