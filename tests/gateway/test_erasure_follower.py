"""The erasure follower: erasures made elsewhere (another gateway replica, identity) drop this replica's kept
answers of the tenant, from identity's override feed; a tenant whose feed cannot be read loses them too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.gateway.clock import FakeClock
from wayline_gateway.erasures import ErasureFollower, FeedPage
from wayline_gateway.http.answer_cache import AnswerCache, CacheKey
from wayline_gateway.routes import ERASING_METHODS, build_routes
from wayline_gateway.service import BACKEND_SERVICES

POLL = 2.0
BLIND_AFTER = 20.0


@dataclass
class Feed:
    """Each tenant's feed as (version, erased); pages of `page_size`."""

    overrides: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)
    page_size: int = 2
    down: bool = False
    calls: list[tuple[str, int, str]] = field(default_factory=list)
    heads_unknown: bool = False  # an identity that predates GetOverrideFeedHeads
    head_calls: int = 0
    forgotten: dict[str, int] = field(default_factory=dict)  # a head above the overrides left (erased)

    def heads(self, tenants: Sequence[str]) -> dict[str, int] | None:
        self.head_calls += 1
        if self.down:
            raise ConnectionError("identity cannot be reached")
        if self.heads_unknown:
            return None
        return {t: self.head(t) for t in tenants}

    def head(self, tenant: str) -> int:
        return max([self.forgotten.get(tenant, 0), *(v for v, _ in self.overrides.get(tenant, []))])

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
        self.calls.append((tenant, after_version, page_token))
        if self.down:
            raise ConnectionError("identity cannot be reached")
        feed = self.overrides.get(tenant, [])
        after = int(page_token) if page_token else after_version
        page = [o for o in feed if o[0] > after][: self.page_size]
        head = self.head(tenant)
        last = page[-1][0] if page else 0
        return FeedPage(
            erasures=sum(1 for _, erased in page if erased),
            last_version=last,
            next_page_token=str(last) if page and last < head else "",
            max_version=head,
        )

    def add(self, tenant: str, erased: bool) -> None:
        feed = self.overrides.setdefault(tenant, [])
        feed.append((len(feed) + 1, erased))


def key(tenant: str, name: str = "profile") -> CacheKey:
    return (tenant, "/wayline.identity.v1.IdentityService/GetProfile", name.encode())


def follower(feed: Feed, cache: AnswerCache, clock: FakeClock) -> ErasureFollower:
    return ErasureFollower(feed, cache, poll_seconds=POLL, blind_after=BLIND_AFTER, clock=clock.now)


def keep(cache: AnswerCache, cache_key: CacheKey) -> None:
    cache.compute(cache_key, lambda: b"answer")


def kept(cache: AnswerCache, cache_key: CacheKey) -> bool:
    return cache.lookup(cache_key, 3600) is not None


def test_an_erasure_in_the_feed_drops_the_tenants_answers() -> None:
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    feed.add("acme", erased=False)
    feed.add("acme", erased=True)  # before this replica followed acme: covered by the first-sight drop
    keep(cache, key("acme"))  # kept without the guard: followed only by the poll, which drops them
    keep(cache, key("other"))
    follow = follower(feed, cache, clock)
    follow.poll()
    assert follow.cursor("acme") == 2  # from the head
    assert not kept(cache, key("acme"))  # kept before the cursor was known
    keep(cache, key("acme"))
    keep(cache, key("other"))
    for _ in range(3):
        feed.add("acme", erased=False)  # merges: nothing erased
    follow.poll()
    assert follow.cursor("acme") == 5
    assert kept(cache, key("acme"))
    for erased in (False, False, False, True, False):  # the erasure on the second page
        feed.add("acme", erased)
    follow.poll()
    assert follow.cursor("acme") == 10
    assert not kept(cache, key("acme"))
    assert kept(cache, key("other"))  # another tenant's answers stay


def test_a_tenant_is_followed_from_before_its_first_kept_answer() -> None:
    """Through the cache's guard the head is read before the first computation: nothing kept needs dropping,
    and an erasure made while the answer was computed is seen by the next poll."""
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    follow = follower(feed, cache, clock)
    cache.guard_with(follow.follow)
    feed.add("acme", erased=True)  # an earlier erasure: the answer computed next cannot contain it

    def erased_while_computing() -> bytes:
        assert follow.cursor("acme") == 1  # the head was read before the computation
        feed.add("acme", erased=True)
        return b"answer"

    cache.compute(key("acme"), erased_while_computing)
    assert kept(cache, key("acme"))
    keep(cache, key("acme", "other"))
    assert len(feed.calls) == 1  # one head read per tenant
    follow.poll()
    assert not kept(cache, key("acme"))
    keep(cache, key("acme"))
    follow.poll()
    assert kept(cache, key("acme"))  # followed: no drop without an erasure


def test_an_answer_is_not_kept_when_the_tenants_place_in_the_feed_cannot_be_read() -> None:
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    follow = follower(feed, cache, clock)
    cache.guard_with(follow.follow)
    feed.down = True
    assert cache.compute(key("acme"), lambda: b"answer").answer == b"answer"  # answered
    assert not kept(cache, key("acme"))
    feed.down = False
    keep(cache, key("acme"))
    assert kept(cache, key("acme"))


def test_a_tenant_without_kept_answers_is_not_followed() -> None:
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    follow = follower(feed, cache, clock)
    follow.poll()
    assert feed.calls == []
    keep(cache, key("acme"))
    follow.poll()
    assert follow.cursor("acme") == 0
    cache.forget_tenant("acme")
    follow.poll()
    assert follow.cursor("acme") is None


def test_answers_are_dropped_when_the_feed_cannot_be_read_for_too_long() -> None:
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    follow = follower(feed, cache, clock)
    keep(cache, key("acme"))
    follow.poll()
    keep(cache, key("acme"))
    feed.down = True
    clock.advance(BLIND_AFTER - 1)
    follow.poll()
    assert kept(cache, key("acme"))  # a blip: the answers stay
    clock.advance(1)
    follow.poll()
    assert not kept(cache, key("acme"))  # fail closed
    assert follow.cursor("acme") is None
    keep(cache, key("acme"))
    follow.poll()  # still down, and no position known: nothing kept can be vouched for
    assert not kept(cache, key("acme"))


def test_only_feeds_whose_head_passed_the_cursor_are_read() -> None:
    feed, cache, clock = Feed(), AnswerCache(1 << 20, refresh_after=60), FakeClock()
    follow = follower(feed, cache, clock)
    for tenant in ("acme", "globex", "initech"):
        feed.add(tenant, erased=False)
        keep(cache, key(tenant))
    follow.poll()  # each tenant's place in the feed, from its head (answers kept before it dropped)
    for tenant in ("acme", "globex", "initech"):
        keep(cache, key(tenant))
    feed.calls.clear()
    for _ in range(3):
        clock.advance(BLIND_AFTER / 2)
        follow.poll()
    assert feed.calls == []  # idle feeds: one call of heads per poll, no page
    assert all(kept(cache, key(t)) for t in ("acme", "globex", "initech"))  # the heads vouch for them

    feed.add("globex", erased=True)
    follow.poll()
    assert feed.calls == [("globex", 1, "")]
    assert not kept(cache, key("globex"))
    assert kept(cache, key("acme"))

    feed.forgotten["acme"] = 9  # overrides above the last one were forgotten: the head says so
    follow.poll()
    assert feed.calls[-1] == ("acme", 1, "")
    assert follow.cursor("acme") == 9  # read to the end: the cursor takes the head
    feed.calls.clear()
    follow.poll()
    assert feed.calls == []

    feed.heads_unknown = True  # identity predates the heads: every feed is read, as before them
    feed.calls.clear()
    follow.poll()
    assert [c[0] for c in feed.calls] == ["acme", "initech"]  # globex has nothing kept to drop now


def test_every_erasing_method_is_a_public_route() -> None:
    routes = build_routes(BACKEND_SERVICES)
    for method in ERASING_METHODS:
        assert routes[method].erases
        assert not routes[method].read_only
    assert not routes["/wayline.identity.v1.IdentityService/GetProfile"].erases
