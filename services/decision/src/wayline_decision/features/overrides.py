"""Follows identity's override feed (IdentityService.ListPersonOverrides) into the online feature state, so
that a merged person's history reads under the survivor; acknowledges each tenant's cursor
(AcknowledgePersonOverrides, consumer `decision`) so identity's erasures can complete.

Each poll asks identity for the feed heads of every tenant the feature service follows (those it holds, and
those it remembered: every tenant an RPC brought to this process or, with the Redis state, to any replica;
OnlineFeatures.remember) in one call (GetOverrideFeedHeads, ADR 95); for each tenant whose head passed the
head its feed was last read under, the follower reads the feed after the tenant's cursor page by page and
applies each page
(`OnlineFeatures.apply_overrides`, which logs it with the state's other changes, so the cursor survives a
restart with the state it describes). A failed poll doubles the wait, up to ten polls; no error ends the
thread, `stop` does. Replaying a page is harmless: versions at or below the cursor are skipped.

Other state of this process keyed by person (the traces' cached identifiers and recent traces,
traces/forgetting.py) listens (`add_listener`): each page goes to every listener after the online state took
it and before the cursor is acknowledged, and the tenants a listener holds are followed too.

The gRPC side is `IdentityOverrideFeed`; the loop is free of gRPC.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import grpc
import structlog

from wayline.common.context import TENANT_HEADER
from wayline.common.override_heads import FeedHeads, read_override_heads
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline_decision.features.service import OnlineFeatures

__all__ = ["CONSUMER", "IdentityOverrideFeed", "OverrideFeed", "OverrideFollower", "OverrideListener"]

log = structlog.get_logger("wayline.decision.features")

CONSUMER = "decision"
"""The name the decision service acknowledges the feed under."""


class OverrideFeed(Protocol):
    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        """Each tenant's feed head, asked in one go; None when identity cannot tell (every feed is read)."""
        ...

    def page(
        self, tenant: str, after_version: int, page_token: str
    ) -> tuple[Sequence[person_override_pb2.PersonOverride], str]: ...

    def acknowledge(self, tenant: str, applied_version: int) -> None: ...

    def close(self) -> None: ...


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


class OverrideFollower:
    def __init__(self, feed: OverrideFeed, features: OnlineFeatures, *, poll_seconds: float) -> None:
        self._feed = feed
        self._features = features
        self._poll_seconds = poll_seconds
        self._max_backoff = max(min(10 * poll_seconds, 30.0), poll_seconds)
        self._acknowledged: dict[str, int] = {}
        self._heads = FeedHeads()
        self._listeners: list[OverrideListener] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: OverrideListener) -> None:
        """Before `start`."""
        self._listeners.append(listener)

    def tenant_names(self) -> list[str]:
        names = set(self._features.tenant_names())
        for listener in self._listeners:
            names.update(listener.tenant_names())
        return sorted(names)

    def poll(self) -> bool:
        """One pass over every tenant whose feed moved; True when each was brought up to date and
        acknowledged."""
        tenants = self.tenant_names()
        if not tenants:
            return True
        try:
            heads = self._feed.heads(tenants)
        except grpc.RpcError as error:
            if not self._stopping.is_set():
                log.warning("features.override_heads_failed", error=str(error.code()))
            return False
        except Exception:  # the channel closed by `stop` (or a defect: logged, retried later)
            if not self._stopping.is_set():
                log.exception("features.override_heads_crashed")
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
                    log.warning("features.override_feed_failed", tenant=tenant, error=str(error.code()))
                caught_up = False
            except Exception:  # one tenant's defect must not stop the others
                log.exception("features.override_feed_crashed", tenant=tenant)
                caught_up = False
        return caught_up

    def follow(self, tenant: str) -> int:
        start = self._features.cursor(tenant)
        token = ""
        while not self._stopping.is_set():
            overrides, token = self._feed.page(tenant, start, token)
            if overrides:
                self._features.apply_overrides(tenant, overrides)
                for listener in self._listeners:
                    listener.apply_overrides(tenant, overrides)
            if not token or not overrides:
                break
        cursor = self._features.cursor(tenant)
        if cursor > self._acknowledged.get(tenant, 0):
            self._feed.acknowledge(tenant, cursor)
            self._acknowledged[tenant] = cursor
        return cursor

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decision-override-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._feed.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failed = 0
        while not self._stopping.is_set():
            failed = 0 if self.poll() else failed + 1
            delay = self._poll_seconds * 2 ** min(failed, 16) if failed else self._poll_seconds
            self._stopping.wait(min(delay, self._max_backoff))
