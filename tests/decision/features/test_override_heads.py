"""The decision service's override follower reads only the feeds whose head moved since it last read them
(GetOverrideFeedHeads, ADR 95); the follower against a real identity is in test_online_merges.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import grpc

from wayline.identity.v1 import person_override_pb2
from wayline_decision.features.overrides import OverrideFollower
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.features.state import InProcessFeatureState

Override = person_override_pb2.PersonOverride


class Feed:
    """Identity's feed per tenant, each read in one page, with the heads GetOverrideFeedHeads gives (None:
    an identity that predates the call)."""

    def __init__(self) -> None:
        self.overrides: dict[str, list[Override]] = {}
        self.pages: list[tuple[str, int]] = []
        self.acknowledged: list[tuple[str, int]] = []
        self.heads_unknown = False
        self.heads_down = False

    def heads(self, tenants: Sequence[str]) -> dict[str, int] | None:
        if self.heads_down:
            raise Unavailable()
        if self.heads_unknown:
            return None
        return {t: max((o.version for o in self.overrides.get(t, [])), default=0) for t in tenants}

    def page(self, tenant: str, after_version: int, page_token: str) -> tuple[list[Override], str]:
        self.pages.append((tenant, after_version))
        return [o for o in self.overrides.get(tenant, []) if o.version > after_version], ""

    def acknowledge(self, tenant: str, applied_version: int) -> None:
        self.acknowledged.append((tenant, applied_version))

    def close(self) -> None:
        pass


class Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def _features(*tenants: str) -> OnlineFeatures:
    features = OnlineFeatures(
        lambda tenant: InProcessFeatureState(settle_after_us=1_000_000),
        cast(Any, None),  # journeys: not asked
        settle_after_us=1_000_000,
    )
    for tenant in tenants:
        features.remember(tenant)
    return features


def test_only_the_feeds_whose_head_moved_are_read() -> None:
    feed, features = Feed(), _features("acme", "globex", "initech")
    feed.overrides["acme"] = [Override(person_id="q", override_person_id="p", version=2)]
    follower = OverrideFollower(feed, features, poll_seconds=60)

    assert follower.poll() is True  # each feed read once, to learn where it stands
    assert feed.pages == [("acme", 0), ("globex", 0), ("initech", 0)]
    assert feed.acknowledged == [("acme", 2)]
    feed.pages.clear()
    assert follower.poll() is True
    assert feed.pages == []  # idle: the heads told so, in one call for every tenant

    feed.overrides["globex"] = [Override(person_id="a", override_person_id="b", version=5)]
    assert follower.poll() is True
    assert feed.pages == [("globex", 0)]
    assert features.cursor("globex") == 5
    assert feed.acknowledged[-1] == ("globex", 5)

    feed.heads_down = True
    feed.overrides["acme"].append(Override(person_id="x", override_person_id="y", version=3))
    assert follower.poll() is False  # identity down: nothing read, the wait grows
    feed.heads_down = False
    assert follower.poll() is True
    assert feed.pages[-1] == ("acme", 2)
    assert features.cursor("acme") == 3

    feed.heads_unknown = True  # an identity that predates the heads: every feed, every poll
    feed.pages.clear()
    follower.poll()
    assert [tenant for tenant, _ in feed.pages] == ["acme", "globex", "initech"]
    features.close()
