"""Follows identity's override feed (IdentityService.ListPersonOverrides) into the orchestrator's state
(person_overrides.py), and acknowledges each tenant's cursor (AcknowledgePersonOverrides, consumer
`orchestrator`) so that identity's erasures can complete. The structure is the decision service's follower
(wayline_decision.features.overrides): a feed protocol, its gRPC implementation, and a thread.

Each poll asks identity for the feed heads of every tenant the orchestrator keeps anything for in one call
(GetOverrideFeedHeads, ADR 95); for each tenant whose head passed the head its feed was last read under, the
follower reads the feed after the tenant's cursor page by page and applies each page; the cursor is stored
with the effects, so it survives a restart with the state it describes. A failed poll doubles the wait, up to
ten polls (30 s at most); no error ends the thread, `stop` does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc
import structlog

from wayline.common.context import TENANT_HEADER
from wayline.common.override_heads import FeedHeads, read_override_heads
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


class OverrideFeed(Protocol):
    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        """Each tenant's feed head, asked in one go; None when identity cannot tell (every feed is read)."""
        ...

    def page(self, tenant: str, after_version: int, page_token: str) -> tuple[list[PersonOverride], str]: ...

    def acknowledge(self, tenant: str, applied_version: int) -> None: ...

    def close(self) -> None: ...


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


class OverrideFollower:
    def __init__(self, feed: OverrideFeed, states: PersonStates, *, poll_seconds: float) -> None:
        self._feed = feed
        self._states = states
        self._poll_seconds = poll_seconds
        self._max_backoff = max(min(10 * poll_seconds, 30.0), poll_seconds)
        self._acknowledged: dict[str, int] = {}
        self._heads = FeedHeads()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> bool:
        """One pass over every tenant whose feed moved; True when each was brought up to date and
        acknowledged."""
        try:
            tenants: Sequence[str] = self._states.tenant_names()
        except Exception:
            log.exception("flows.override_feed_tenants_failed")
            return False
        if not tenants:
            return True
        try:
            heads = self._feed.heads(tenants)
        except grpc.RpcError as error:
            if not self._stopping.is_set():
                log.warning("flows.override_heads_failed", error=str(error.code()))
            return False
        except Exception:  # the channel closed by `stop` (or a defect: logged, retried later)
            if not self._stopping.is_set():
                log.exception("flows.override_heads_crashed")
            return False
        caught_up = True
        for tenant in self._heads.moved(tenants, heads):
            if self._stopping.is_set():
                return False
            try:
                self.follow(tenant)
                if heads is not None and not self._stopping.is_set():  # else: maybe not read to its end
                    self._heads.read_under(tenant, heads.get(tenant, 0))
            except grpc.RpcError as error:
                if not self._stopping.is_set():
                    log.warning("flows.override_feed_failed", tenant=tenant, error=str(error.code()))
                caught_up = False
            except Exception:  # one tenant's defect (or the database down a moment) must not stop the others
                log.exception("flows.override_feed_crashed", tenant=tenant)
                caught_up = False
        return caught_up

    def follow(self, tenant: str) -> int:
        """Apply the tenant's feed after its cursor, then acknowledge the cursor; the cursor."""
        start = self._states.cursor(tenant)
        token = ""
        while not self._stopping.is_set():
            overrides, token = self._feed.page(tenant, start, token)
            if overrides:
                self._states.apply(tenant, overrides)
            if not token or not overrides:
                break
        cursor = self._states.cursor(tenant)
        if cursor > self._acknowledged.get(tenant, 0):
            self._feed.acknowledge(tenant, cursor)
            self._acknowledged[tenant] = cursor
        return cursor

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="flow-override-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._feed.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failed = 0
        while not self._stopping.is_set():
            failed = 0 if self.poll() else failed + 1
            delay = self._poll_seconds * 2 ** min(failed, 16) if failed else self._poll_seconds
            self._stopping.wait(min(delay, self._max_backoff))
