"""The loop of a store that follows identity's override feed for many tenants (the decision service's online
features, the orchestrator's state): a thread that polls every `poll_seconds`, asks identity for the feed
heads of all its tenants in one call (ADR 95), reads the feed of each tenant whose head moved since it was
last read to its end, and acknowledges the store's cursor to identity so that erasures can complete.

A failed poll doubles the wait, up to ten polls (30 s at most), and the next good poll resets it; no error
ends the thread, `stop` does. One tenant's failure does not hold up the others. Subclasses say which tenants
to follow and how to read one tenant's feed into their store (`tenant_names`, `read`); journeys' follower,
with its own error types and cursor store, is its own (wayline_journeys.follower).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc
from structlog.typing import FilteringBoundLogger

from wayline.common.override_heads import FeedHeads

__all__ = ["FeedFollower", "HeadsFeed"]


class HeadsFeed(Protocol):
    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        """Each tenant's feed head, asked in one go; None when identity cannot tell (every feed is read)."""
        ...

    def acknowledge(self, tenant: str, applied_version: int) -> None: ...

    def close(self) -> None:
        """Release the connection; a call in progress ends at once."""
        ...


class FeedFollower(ABC):
    def __init__(
        self,
        feed: HeadsFeed,
        *,
        poll_seconds: float,
        thread_name: str,
        log: FilteringBoundLogger,
        events: str,
    ) -> None:
        """`events` prefixes the names of the log events (`{events}.override_feed_failed`)."""
        self._heads_feed = feed
        self._poll_seconds = poll_seconds
        self._max_backoff = max(min(10 * poll_seconds, 30.0), poll_seconds)
        self._thread_name = thread_name
        self._log = log
        self._events = events
        self._acknowledged: dict[str, int] = {}
        self._heads = FeedHeads()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def tenant_names(self) -> Sequence[str]:
        """Every tenant to follow."""

    @abstractmethod
    def read(self, tenant: str) -> int:
        """Apply the tenant's feed after the store's cursor, page by page, until read to its end (or the
        follower stops: `stopping`); the cursor after."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def poll(self) -> bool:
        """One pass over every tenant whose feed moved; True when each was brought up to date and
        acknowledged."""
        try:
            tenants = self.tenant_names()
        except Exception:  # noqa: BLE001 - the store down a moment: logged, retried later
            self._log.exception(f"{self._events}.override_feed_tenants_failed")
            return False
        if not tenants:
            return True
        try:
            heads = self._heads_feed.heads(tenants)
        except grpc.RpcError as error:
            if not self.stopping:
                self._log.warning(f"{self._events}.override_heads_failed", error=str(error.code()))
            return False
        except Exception:  # noqa: BLE001 - the channel closed by `stop`, or a defect: logged, retried later
            if not self.stopping:
                self._log.exception(f"{self._events}.override_heads_crashed")
            return False
        caught_up = True
        for tenant in self._heads.moved(tenants, heads):
            if self.stopping:
                return False
            caught_up = self._follow_logged(tenant, heads) and caught_up
        return caught_up

    def _follow_logged(self, tenant: str, heads: Mapping[str, int] | None) -> bool:
        """`follow` one tenant, its failure logged (unless the follower stops: the channel closed by `stop`
        refuses calls); True when the tenant was brought up to date."""
        try:
            self.follow(tenant)
            if heads is not None and not self.stopping:  # else: maybe not read to its end
                self._heads.read_under(tenant, heads.get(tenant, 0))
        except grpc.RpcError as error:
            if not self.stopping:
                self._log.warning(
                    f"{self._events}.override_feed_failed", tenant=tenant, error=str(error.code())
                )
            return False
        except Exception:  # noqa: BLE001 - one tenant's defect, or the store down, must not stop the others
            if not self.stopping:
                self._log.exception(f"{self._events}.override_feed_crashed", tenant=tenant)
            return False
        return True

    def follow(self, tenant: str) -> int:
        """Read the tenant's feed, then acknowledge the cursor if it moved since the last acknowledgement;
        the cursor."""
        cursor = self.read(tenant)
        if cursor > self._acknowledged.get(tenant, 0):
            self._heads_feed.acknowledge(tenant, cursor)
            self._acknowledged[tenant] = cursor
        return cursor

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread: the feed is closed, which ends a call to identity in progress at once, and a store
        operation in progress is waited for (up to `timeout`)."""
        self._stopping.set()
        self._heads_feed.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failed = 0
        while not self._stopping.is_set():
            failed = 0 if self.poll() else failed + 1
            delay = self._poll_seconds * 2 ** min(failed, 16) if failed else self._poll_seconds
            self._stopping.wait(min(delay, self._max_backoff))
