"""Follows identity's override feed, so that changes which never pass through ingest reach journeys.

Ingest pushes the overrides of each resolution (ApplyPersonOverrides) before it writes the events that caused
them; an administrator's merges, unmerges and splits and identity's erasures reach journeys only through the
feed (IdentityService.ListPersonOverrides). Each poll asks identity for the heads of every tenant journeys
knows in one call (GetOverrideFeedHeads, ADR 95); for each tenant whose head passed the head its feed was last
read under, the follower reads the feed after the tenant's cursor page by page, applies each page
(`PersonChanges`: overrides recorded, `erased` markers erased), stores the cursor, and then acknowledges it to
identity (AcknowledgePersonOverrides, consumer `journeys`), which lets identity's erasures complete and shows
a lagging consumer. An idle tenant costs a name in that one call, not a call of its own.

The cursor is the highest feed version applied *by the follower*, every version below it included. It is not
the highest version recorded in `person_overrides`: that one goes down when an erasure forgets overrides, and
goes up with overrides ingest pushes ahead of earlier versions the follower has not read yet (an
administrator's merge made a moment before). Replaying the feed is harmless (the highest version per key wins,
erasing twice deletes nothing more), so a cursor stored late costs work, never correctness.

Free of gRPC: the feed, the changes and the cursors are passed in (identity_feed.py is the gRPC side).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from wayline.common.override_heads import FeedHeads
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.overrides import PersonOverride

__all__ = [
    "CONSUMER",
    "ChangeSink",
    "CursorStore",
    "FeedPage",
    "FeedRefused",
    "FeedUnavailable",
    "KnownTenants",
    "OverrideFeed",
    "OverrideFollower",
]

log = structlog.get_logger("wayline.journeys.follower")

CONSUMER = "journeys"
"""The name journeys acknowledges the feed under."""


class FeedUnavailable(Exception):
    """Identity cannot be reached (or did not answer in time): no tenant's feed can be read now."""


class FeedRefused(Exception):
    """Identity refused one tenant's call, or sent what journeys cannot apply; the other tenants go on."""


@dataclass(frozen=True)
class FeedPage:
    overrides: tuple[PersonOverride, ...]
    """By increasing version."""
    next_page_token: str = ""
    """Empty when the tenant's feed has been read to its end."""


class OverrideFeed(Protocol):
    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        """Each tenant's feed head, asked in one go; None when identity cannot tell (every feed is read)."""
        ...

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage: ...

    def acknowledge(self, tenant: str, applied_version: int) -> None: ...

    def close(self) -> None:
        """Release the connection; a call in progress ends at once (with FeedUnavailable or FeedRefused)."""


class ChangeSink(Protocol):
    def apply(self, tenant: str, overrides: Sequence[PersonOverride]) -> object: ...


class CursorStore(Protocol):
    def cursors(self) -> Mapping[str, int]: ...

    def advance(self, tenant: str, version: int) -> None: ...


class KnownTenants:
    """The tenants to follow: those the store holds, reloaded every `refresh_seconds`, and those noted since
    (by WriteEvents and ApplyPersonOverrides), so that a new tenant is followed from its first write on.
    A tenant, once known, stays known. Thread-safe; `note` is cheap enough for every write."""

    def __init__(
        self,
        load: Callable[[], Iterable[str]],
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh = refresh_seconds
        self._clock = clock
        self._tenants: set[str] = set()
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def note(self, tenant: str) -> None:
        if tenant not in self._tenants:
            with self._lock:
                self._tenants.add(tenant)

    def current(self) -> list[str]:
        """Every known tenant, sorted; reloads from the store when the last load is older than the refresh
        interval (and raises when the store cannot answer)."""
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at >= self._refresh:
            loaded = set(self._load())
            with self._lock:
                self._tenants |= loaded
                self._loaded_at = now
        with self._lock:
            return sorted(self._tenants)


class OverrideFollower:
    """Polls the feed every `poll_seconds` in a thread of its own; after a failed poll the wait doubles, up to
    `max_backoff_seconds` (by default ten polls, at most 30 s), and the next good poll resets it. No error
    ends the thread; `stop` does."""

    def __init__(
        self,
        feed: OverrideFeed,
        changes: ChangeSink,
        cursors: CursorStore,
        tenants: KnownTenants,
        *,
        poll_seconds: float,
        max_backoff_seconds: float | None = None,
    ) -> None:
        self._feed = feed
        self._changes = changes
        self._cursor_store = cursors
        self.tenants = tenants
        self._poll_seconds = poll_seconds
        if max_backoff_seconds is None:
            max_backoff_seconds = min(10 * poll_seconds, 30.0)
        self._max_backoff = max(max_backoff_seconds, poll_seconds)
        self._cursors: dict[str, int] = {}
        self._acknowledged: dict[str, int] = {}
        self._heads = FeedHeads()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def cursor(self, tenant: str) -> int:
        return self._cursors.get(tenant, 0)

    def poll(self) -> bool:
        """One pass over every known tenant whose feed moved; True when each was brought up to date and
        acknowledged. Stops at the first tenant whose feed is unavailable (identity is down for all)."""
        tenants = self.tenants.current()
        if not tenants:
            return True
        try:
            heads = self._feed.heads(tenants)
        except FeedUnavailable as exc:
            if not self._stopping.is_set():
                log.warning("journeys.override_feed_unavailable", error=str(exc))
            return False
        except FeedRefused as exc:  # read every feed, as before the heads
            log.warning("journeys.override_heads_failed", error=str(exc))
            heads = None
        moved = self._heads.moved(tenants, heads)
        if moved:
            for tenant, version in self._cursor_store.cursors().items():  # other replicas' progress too
                self._cursors[tenant] = max(self.cursor(tenant), version)
        return self._follow_each(moved, heads)

    def _follow_each(self, tenants: Sequence[str], heads: Mapping[str, int] | None) -> bool:
        caught_up = True
        for tenant in tenants:
            if self._stopping.is_set():
                return False
            try:
                self.follow(tenant)
                if heads is not None and not self._stopping.is_set():  # else: maybe not read to its end
                    self._heads.read_under(tenant, heads.get(tenant, 0))
            except FeedUnavailable as exc:
                if not self._stopping.is_set():  # else: the call was cut short by stop()
                    log.warning("journeys.override_feed_unavailable", tenant=tenant, error=str(exc))
                return False
            except (FeedRefused, StoreUnavailable) as exc:
                if not self._stopping.is_set():
                    log.warning("journeys.override_feed_failed", tenant=tenant, error=str(exc))
                caught_up = False
            except Exception:  # one tenant's defect must not stop the others
                log.exception("journeys.override_feed_crashed", tenant=tenant)
                caught_up = False
        return caught_up

    def follow(self, tenant: str) -> int:
        """Apply `tenant`'s feed after its cursor, page by page (the cursor stored after each), then
        acknowledge the cursor to identity if it moved since the last acknowledgement; the cursor."""
        start = cursor = self.cursor(tenant)
        token = ""
        while not self._stopping.is_set():
            page = self._feed.page(tenant, start, token)
            if page.overrides:
                self._changes.apply(tenant, page.overrides)
                cursor = max(cursor, *(o.version for o in page.overrides))
                self._cursor_store.advance(tenant, cursor)
                self._cursors[tenant] = cursor
            if not page.next_page_token or not page.overrides:
                break
            token = page.next_page_token
        if cursor > self._acknowledged.get(tenant, 0):
            self._feed.acknowledge(tenant, cursor)
            self._acknowledged[tenant] = cursor
        return cursor

    def delay(self, failed_polls: int) -> float:
        """Seconds to wait before the next poll after `failed_polls` failed polls in a row."""
        if failed_polls == 0:
            return self._poll_seconds
        doubled = self._poll_seconds * 2 ** min(failed_polls, 64)  # bounded: a day of failures stays a float
        return float(min(doubled, self._max_backoff))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="journeys-override-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread: the feed is closed, which ends a call to identity in progress at once, and a
        store operation in progress is waited for (up to `timeout`)."""
        self._stopping.set()
        self._feed.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failed = 0
        while not self._stopping.is_set():
            try:
                caught_up = self.poll()
            except StoreUnavailable as exc:  # the tenants or cursors could not be read
                log.warning("journeys.override_feed_failed", error=str(exc))
                caught_up = False
            except Exception:
                log.exception("journeys.override_feed_crashed")
                caught_up = False
            failed = 0 if caught_up else failed + 1
            self._stopping.wait(self.delay(failed))
