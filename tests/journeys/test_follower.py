"""The override-feed follower's own logic, with the feed, the stores and the clock as fakes: cursor math,
acknowledgements, errors and backoff, the tenant list, the thread's lifecycle. The follower against a real
identity server is in test_override_feed.py; erasures in a batch are in test_erased_overrides.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest

from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.follower import (
    FeedPage,
    FeedRefused,
    FeedUnavailable,
    KnownTenants,
    OverrideFollower,
)
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.person_changes import runs


def merge(version: int, source: str = "q", target: str = "p") -> PersonOverride:
    return PersonOverride(source, target, version)


def erased(version: int, person: str) -> PersonOverride:
    return PersonOverride(person, person, version, erased=True)


class Feed:
    """Identity's feed per tenant, served `page_size` at a time, as ListPersonOverrides pages it."""

    def __init__(self, page_size: int = 2) -> None:
        self.overrides: dict[str, list[PersonOverride]] = {}
        self.page_size = page_size
        self.requests: list[tuple[str, int, str]] = []
        self.acknowledged: list[tuple[str, int]] = []
        self.page_failures: list[Exception] = []  # raised, one per call, before anything is served
        self.head_failures: list[Exception] = []
        self.heads_unknown = False  # an identity that predates GetOverrideFeedHeads
        self.head_requests: list[list[str]] = []
        self.ack_failures: list[Exception] = []
        self.closed = False

    def heads(self, tenants: Sequence[str]) -> dict[str, int] | None:
        self.head_requests.append(list(tenants))
        if self.head_failures:
            raise self.head_failures.pop(0)
        if self.heads_unknown:
            return None
        return {t: max((o.version for o in self.overrides.get(t, [])), default=0) for t in tenants}

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
        self.requests.append((tenant, after_version, page_token))
        if self.page_failures:
            raise self.page_failures.pop(0)
        after = int(page_token) if page_token else after_version
        rest = [o for o in self.overrides.get(tenant, []) if o.version > after]
        page = rest[: self.page_size]
        return FeedPage(tuple(page), str(page[-1].version) if len(rest) > len(page) else "")

    def acknowledge(self, tenant: str, applied_version: int) -> None:
        if self.ack_failures:
            raise self.ack_failures.pop(0)
        self.acknowledged.append((tenant, applied_version))

    def close(self) -> None:
        self.closed = True


class Changes:
    def __init__(self) -> None:
        self.applied: list[tuple[str, list[int]]] = []

    def apply(self, tenant: str, overrides: Sequence[PersonOverride]) -> None:
        self.applied.append((tenant, [o.version for o in overrides]))


class Cursors:
    def __init__(self, stored: Mapping[str, int] | None = None) -> None:
        self.stored = dict(stored or {})
        self.advances: list[tuple[str, int]] = []

    def cursors(self) -> dict[str, int]:
        return dict(self.stored)

    def advance(self, tenant: str, version: int) -> None:
        self.advances.append((tenant, version))
        self.stored[tenant] = max(self.stored.get(tenant, 0), version)


def follower(feed: Feed, cursors: Cursors, *tenants: str, changes: Changes | None = None) -> OverrideFollower:
    return OverrideFollower(
        feed, changes or Changes(), cursors, KnownTenants(lambda: tenants), poll_seconds=0.5
    )


def test_follow_applies_page_by_page_stores_each_cursor_and_acknowledges_the_last() -> None:
    feed, cursors, changes = Feed(page_size=2), Cursors(), Changes()
    feed.overrides["t"] = [merge(1), merge(2), merge(4), merge(7), merge(9)]  # gaps: superseded versions

    assert follower(feed, cursors, "t", changes=changes).poll() is True

    assert changes.applied == [("t", [1, 2]), ("t", [4, 7]), ("t", [9])]
    assert cursors.advances == [("t", 2), ("t", 7), ("t", 9)]
    assert feed.acknowledged == [("t", 9)]
    # Every page of one read is asked with the same after_version and the previous page's token.
    assert feed.requests == [("t", 0, ""), ("t", 0, "2"), ("t", 0, "7")]


def test_follow_resumes_after_the_stored_cursor_and_acknowledges_only_progress() -> None:
    feed, cursors = Feed(), Cursors({"t": 4})
    feed.overrides["t"] = [merge(3), merge(4)]
    following = follower(feed, cursors, "t")

    following.poll()
    assert feed.requests == [("t", 4, "")]
    assert feed.acknowledged == [("t", 4)]  # once after a start, so identity knows where journeys is

    feed.overrides["t"].append(merge(6))
    following.poll()
    following.poll()  # the head has not moved since the feed was read to it: nothing to ask
    assert feed.acknowledged == [("t", 4), ("t", 6)]
    assert [r[1] for r in feed.requests] == [4, 4]


def test_cursor_never_moves_back() -> None:
    feed, cursors = Feed(), Cursors({"t": 5})
    feed.overrides["t"] = [merge(8)]
    following = follower(feed, cursors, "t")
    following.poll()
    assert following.cursor("t") == 8

    cursors.stored["t"] = 3  # a store that answers with less (another replica's older row, say)
    feed.overrides["t"] = [merge(2)]  # and a feed that sends an old version
    feed.heads_unknown = True  # (so that the feed is read whatever its head)
    following.poll()

    assert following.cursor("t") == 8
    assert [r[1] for r in feed.requests][-1] == 8


def test_another_replicas_progress_is_taken_from_the_store() -> None:
    feed, cursors = Feed(), Cursors()
    following = follower(feed, cursors, "t")
    following.poll()
    cursors.stored["t"] = 12
    feed.overrides["t"] = [merge(13)]

    following.poll()

    assert feed.requests[-1] == ("t", 12, "")


def test_identity_down_fails_the_poll_without_applying_or_acknowledging() -> None:
    feed, cursors, changes = Feed(), Cursors(), Changes()
    feed.overrides["a"] = feed.overrides["b"] = [merge(1)]
    feed.page_failures = [FeedUnavailable("UNAVAILABLE: connection refused")]
    following = follower(feed, cursors, "a", "b", changes=changes)

    assert following.poll() is False
    assert changes.applied == []
    assert feed.acknowledged == []
    assert len(feed.requests) == 1  # identity is down for every tenant: the pass stops at once

    assert following.poll() is True
    assert feed.acknowledged == [("a", 1), ("b", 1)]


def test_a_refused_tenant_does_not_hold_up_the_others() -> None:
    feed, cursors = Feed(), Cursors()
    feed.overrides["a"] = feed.overrides["b"] = [merge(3)]
    feed.page_failures = [FeedRefused("INVALID_ARGUMENT: malformed page token")]

    assert follower(feed, cursors, "a", "b").poll() is False

    assert feed.acknowledged == [("b", 3)]


def test_a_failed_acknowledgement_is_sent_again_at_the_next_poll() -> None:
    feed, cursors, changes = Feed(), Cursors(), Changes()
    feed.overrides["t"] = [merge(2)]
    feed.ack_failures = [FeedUnavailable("DEADLINE_EXCEEDED: no answer")]
    following = follower(feed, cursors, "t", changes=changes)

    assert following.poll() is False
    assert following.poll() is True

    assert feed.acknowledged == [("t", 2)]
    assert changes.applied == [("t", [2])]  # applied once: the cursor was stored before the acknowledgement


def test_backoff_doubles_after_each_failed_poll_up_to_the_cap() -> None:
    def delays(poll_seconds: float, **cap: float) -> list[float]:
        following = OverrideFollower(
            Feed(), Changes(), Cursors(), KnownTenants(list), poll_seconds=poll_seconds, **cap
        )
        return [following.delay(n) for n in range(7)]

    assert delays(0.5, max_backoff_seconds=3.0) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert delays(0.1) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])  # ten polls by default
    assert delays(5.0) == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0, 30.0]  # and at most 30 s
    following = OverrideFollower(Feed(), Changes(), Cursors(), KnownTenants(list), poll_seconds=1.0)
    assert following.delay(100_000) == 10.0  # identity down for days: still a wait, not an overflow


def test_known_tenants_adds_noted_tenants_and_reloads_on_schedule() -> None:
    stored = {"a"}
    now = [0.0]
    tenants = KnownTenants(lambda: set(stored), refresh_seconds=60, clock=lambda: now[0])
    assert tenants.current() == ["a"]

    tenants.note("new")
    stored.add("b")
    assert tenants.current() == ["a", "new"]  # noted at once; the store is not asked again yet

    now[0] = 60.0
    assert tenants.current() == ["a", "b", "new"]


def test_erasures_cut_a_batch_into_runs_in_version_order() -> None:
    batch = [merge(5, "x", "y"), erased(3, "p"), merge(1), merge(2, "r", "p"), erased(4, "q")]

    assert [(is_erasure, [o.version for o in run]) for is_erasure, run in runs(batch)] == [
        (False, [1, 2]),
        (True, [3, 4]),
        (False, [5]),
    ]


def test_the_thread_survives_every_error_and_stops_promptly() -> None:
    polled = threading.Event()

    class Broken(Feed):
        def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
            self.requests.append((tenant, after_version, page_token))
            if len(self.requests) >= 4:
                polled.set()
            errors: list[Exception] = [FeedUnavailable("down"), RuntimeError("a bug"), FeedRefused("no")]
            raise errors[len(self.requests) % 3]

    loads = 0

    def tenants() -> list[str]:
        nonlocal loads
        loads += 1
        if loads == 1:
            raise RuntimeError("a bug in loading the tenants")
        return ["t"]

    class FlakyCursors(Cursors):
        calls = 0

        def cursors(self) -> dict[str, int]:
            self.calls += 1
            if self.calls == 2:
                raise StoreUnavailable("ClickHouse down")
            return {}

    following = OverrideFollower(
        Broken(),
        Changes(),
        FlakyCursors(),
        KnownTenants(tenants),
        poll_seconds=0.01,
        max_backoff_seconds=0.02,
    )
    before = set(threading.enumerate())
    following.start()
    assert polled.wait(5), "the follower stopped polling after an error"

    started = time.monotonic()
    following.stop()
    # A follower that ignored the stop would hold `stop` for its whole 10 s join. The bound leaves room for
    # a loaded CI machine (it once took over 1 s there, with two test workers on two cores).
    assert time.monotonic() - started < 3
    assert set(threading.enumerate()) <= before  # its thread has ended


def test_stop_cuts_a_call_to_identity_short() -> None:
    calling, closed = threading.Event(), threading.Event()

    class Hanging(Feed):
        """Identity that never answers: the call ends only when the channel is closed."""

        def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
            calling.set()
            if not closed.wait(30):
                raise AssertionError("never closed")
            raise FeedUnavailable("CANCELLED: channel closed")

        def close(self) -> None:
            closed.set()

    following = OverrideFollower(
        Hanging(), Changes(), Cursors(), KnownTenants(lambda: ["t"]), poll_seconds=0.01
    )
    before = set(threading.enumerate())
    following.start()
    assert calling.wait(5)

    started = time.monotonic()
    following.stop()

    assert time.monotonic() - started < 1
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("failure", [FeedUnavailable("down"), FeedRefused("refused")])
def test_a_failed_page_leaves_the_cursor_where_the_last_applied_page_put_it(failure: Exception) -> None:
    feed, cursors = Feed(page_size=1), Cursors()
    feed.overrides["t"] = [merge(1), merge(2)]
    following = follower(feed, cursors, "t")
    original = feed.page

    def second_page_fails(tenant: str, after_version: int, page_token: str) -> FeedPage:
        if page_token:
            raise failure
        return original(tenant, after_version, page_token)

    feed.page = second_page_fails  # type: ignore[method-assign]
    following.poll()

    assert following.cursor("t") == 1
    assert cursors.stored == {"t": 1}
    assert feed.acknowledged == []


def test_only_feeds_whose_head_moved_are_read() -> None:
    feed, cursors, changes = Feed(), Cursors(), Changes()
    feed.overrides["a"] = [merge(1)]
    following = follower(feed, cursors, "a", "b", "c", changes=changes)

    assert following.poll() is True  # every feed is read once, to learn where each stands
    assert [r[0] for r in feed.requests] == ["a", "b", "c"]
    assert feed.acknowledged == [("a", 1)]

    feed.requests.clear()
    for _ in range(3):
        assert following.poll() is True
    assert feed.requests == []  # idle feeds cost one call of heads per poll, for every tenant at once
    assert feed.head_requests[-1] == ["a", "b", "c"]

    feed.overrides["b"] = [merge(4, "x", "y")]
    assert following.poll() is True
    assert feed.requests == [("b", 0, "")]
    assert changes.applied[-1] == ("b", [4])
    assert feed.acknowledged[-1] == ("b", 4)


def test_without_heads_every_feed_is_read_and_identity_down_reads_none() -> None:
    feed, cursors = Feed(), Cursors()
    feed.overrides["a"] = [merge(1)]
    following = follower(feed, cursors, "a", "b")
    following.poll()
    feed.requests.clear()

    feed.heads_unknown = True  # identity predates the heads: every feed, every poll, as before them
    assert following.poll() is True
    assert following.poll() is True
    assert [r[0] for r in feed.requests] == ["a", "b", "a", "b"]

    feed.heads_unknown = False
    feed.requests.clear()
    feed.head_failures = [FeedRefused("INVALID_ARGUMENT: something identity refused")]
    assert following.poll() is True  # a refused call of heads: every feed is read
    assert [r[0] for r in feed.requests] == ["a", "b"]

    feed.requests.clear()
    feed.overrides["a"].append(merge(2))
    feed.head_failures = [FeedUnavailable("UNAVAILABLE: connection refused")]
    assert following.poll() is False
    assert feed.requests == []
    assert following.poll() is True
    assert feed.requests == [("a", 1, "")]


def test_a_feed_that_failed_is_read_again_though_its_head_did_not_move() -> None:
    feed, cursors = Feed(), Cursors()
    feed.overrides["a"] = [merge(3)]
    feed.ack_failures = [FeedRefused("INTERNAL: acknowledgement failed")]
    following = follower(feed, cursors, "a")

    assert following.poll() is False
    assert following.poll() is True
    assert feed.acknowledged == [("a", 3)]
    assert following.poll() is True
    assert len(feed.requests) == 2
