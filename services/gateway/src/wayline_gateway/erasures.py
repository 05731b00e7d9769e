"""Erasures made through another gateway replica, or by identity itself, reach this replica's kept answers.

The bridge drops a tenant's kept answers when an erasure passes through this replica (answer_cache.py); one
made through another replica never does. So each replica follows identity's override feed
(IdentityService.ListPersonOverrides, the feed every store keyed by person follows) for the tenants it keeps
answers of, and drops a tenant's answers when the feed shows an `erased` marker (ADR 73). Each poll asks for
those tenants' feed heads in one call (GetOverrideFeedHeads, ADR 95) and pages only the feeds whose head
passed the tenant's cursor:

- The cache asks `follow` before each computation (`AnswerCache.guard_with`): a tenant not followed yet is
  followed from the feed's head, read then, before the computation reads anything, so every erasure its
  answer could miss is after the cursor. When the head cannot be read, the answer is given but not kept.
- A tenant with kept answers but no cursor (it lost it while a computation was under way) is followed from
  the head and its answers are dropped: they may predate an erasure this replica will never see.
- A tenant left without kept answers is no longer followed (nothing to drop); it starts again from the head.
- Fail closed: a tenant whose feed could not be read for `blind_after` seconds loses its kept answers (and
  starts again from the head), so identity out of reach never leaves an erased person's answers served for
  longer than that.

The replica reads the feed but never acknowledges it: replicas come and go, and an erasure must not wait for
one that is gone. An erasure can therefore be DONE while another replica has not polled yet: its answers are
served until the next poll, `poll_seconds` (2 s) at most in the steady state.

Free of gRPC but for `IdentityErasureFeed` (the feed over the gateway's identity channel).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import structlog

from wayline.common.context import TENANT_HEADER
from wayline.common.override_heads import read_override_heads
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_gateway.http.answer_cache import AnswerCache

__all__ = ["ErasureFeed", "ErasureFollower", "FeedPage", "IdentityErasureFeed"]

log = structlog.get_logger("wayline.gateway.erasures")

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class FeedPage:
    erasures: int
    """How many overrides on the page are `erased` markers."""
    last_version: int
    """The highest version on the page; 0 when it is empty."""
    next_page_token: str
    """Empty when the feed has been read to its end."""
    max_version: int
    """The feed's head when the page was read."""


class ErasureFeed(Protocol):
    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        """Each tenant's feed head, asked in one go; None when identity cannot tell (every feed is read);
        raises on any failure."""

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
        """One page of `tenant`'s feed after `after_version`; raises on any failure."""


class IdentityErasureFeed:
    """The override feed over the gateway's channel to identity (which adds the internal token)."""

    def __init__(self, channel: grpc.Channel, *, page_size: int = 1000, timeout: float = 5.0) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._page_size = page_size
        self._timeout = timeout

    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        return read_override_heads(self._stub, tenants, timeout=self._timeout)

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
        request = identity_pb.ListPersonOverridesRequest(
            after_version=after_version, page_size=self._page_size, page_token=page_token
        )
        response: identity_pb.ListPersonOverridesResponse = self._stub.ListPersonOverrides(
            request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
        )
        overrides = response.person_overrides
        return FeedPage(
            erasures=sum(1 for override in overrides if override.erased),
            last_version=max((override.version for override in overrides), default=0),
            next_page_token=response.next_page_token,
            max_version=response.max_version,
        )


class ErasureFollower:
    """Polls the feed every `poll_seconds` in a thread of its own (`start`, `stop`); `poll` is one pass."""

    def __init__(
        self,
        feed: ErasureFeed,
        cache: AnswerCache,
        *,
        poll_seconds: float,
        blind_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._cache = cache
        self._poll_seconds = poll_seconds
        self._blind_after = blind_after
        self._clock = clock
        self._cursors: dict[str, int] = {}  # tenant → highest feed version seen
        self._read_at: dict[str, float] = {}  # tenant → when its feed was last read to its end
        self._lock = threading.Lock()  # `follow` runs in request threads, the rest in the poll thread
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def cursor(self, tenant: str) -> int | None:
        with self._lock:
            return self._cursors.get(tenant)

    def follow(self, tenant: str) -> bool:
        """Follow `tenant` from now on (reading the feed's head if it is not followed yet); False when its
        place in the feed cannot be known (identity out of reach)."""
        with self._lock:
            if tenant in self._cursors:
                return True
        try:
            head = self._feed.page(tenant, _INT64_MAX, "").max_version
        except Exception as error:  # noqa: BLE001 - any failure: the answer is not kept
            log.warning("gateway.erasure_feed_failed", tenant=tenant, error=str(error))
            return False
        with self._lock:
            self._cursors.setdefault(tenant, head)
            self._read_at.setdefault(tenant, self._clock())
        return True

    def poll(self) -> None:
        tenants = self._cache.tenants()
        with self._lock:
            for gone in set(self._cursors) - tenants:  # nothing kept: nothing to drop, no need to follow
                del self._cursors[gone]
                self._read_at.pop(gone, None)
        if not tenants:
            return
        names = sorted(tenants)
        try:
            heads = self._feed.heads(names)
        except Exception as error:  # noqa: BLE001 - no feed can be read now
            for tenant in names:
                self._failed(tenant, error)
            return
        for tenant in names:
            if self._stopping.is_set():
                return
            try:
                self._follow(tenant, None if heads is None else heads.get(tenant, 0))
            except Exception as error:  # noqa: BLE001 - any failure leaves the tenant unfollowed for now
                self._failed(tenant, error)

    def _follow(self, tenant: str, head: int | None) -> None:
        """Read the tenant's feed after its cursor, unless its `head` (None: unknown) shows nothing new."""
        cursor = self.cursor(tenant)
        if cursor is not None and head is not None and head <= cursor:
            with self._lock:
                self._read_at[tenant] = self._clock()
            return
        if cursor is None:
            head = self._feed.page(tenant, _INT64_MAX, "").max_version
            # Answers kept before the head was read may predate an erasure this replica will not see.
            self._cache.forget_tenant(tenant)
            with self._lock:
                self._cursors[tenant] = head
                self._read_at[tenant] = self._clock()
            return
        start, token, erased = cursor, "", 0
        while True:
            page = self._feed.page(tenant, start, token)
            erased += page.erasures
            cursor = max(cursor, page.last_version)
            if not page.next_page_token:
                # Read to its end in the page's transaction: nothing at or below the head is unseen (the
                # head is above the last override when an erasure forgot the latest ones).
                cursor = max(cursor, page.max_version)
                break
            if not page.last_version:
                break
            token = page.next_page_token
        if erased:
            self._cache.forget_tenant(tenant)
            log.info("gateway.answers_dropped_after_erasure", tenant=tenant, erasures=erased)
        with self._lock:
            self._cursors[tenant] = cursor
            self._read_at[tenant] = self._clock()

    def _failed(self, tenant: str, error: Exception) -> None:
        with self._lock:
            read_at = self._read_at.get(tenant)
            blind = read_at is None or self._clock() - read_at >= self._blind_after
            if blind:
                self._cursors.pop(tenant, None)
                self._read_at.pop(tenant, None)
        if blind:
            self._cache.forget_tenant(tenant)  # fail closed: we no longer know what was erased
        log.warning("gateway.erasure_feed_failed", tenant=tenant, error=str(error))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gateway-erasure-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # no error ends the thread
                log.exception("gateway.erasure_feed_crashed")
