"""The three evaluators of EventMatcher and PropertyFilter (analytics.proto) agree on random filters over
every operator and every path the contract lets a filter read of the event itself (properties of every JSON
kind, nested, lists, objects and RFC 3339 times; the context; name, type, channel, text, group_id,
sentiment_score, revenue): journeys' SQL on chDB, decision's matcher and the orchestrator's flow runtime, each
reading the events through its own service's conversion (filter_evaluators.py). The filters are
random_filters.py's (those the online/offline feature parity counts with), in matchers that also name an
event, a type or channels at times; the events are feature_log.py's.

`person.<trait>` paths are left out: the orchestrator reads traits through journeys' PersonLookup, so there
is no second copy of a person's traits to hold it to here (decision's lifecycle stages are held to journeys'
on them by test_feature_parity.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.contract import filter_evaluators
from tests.contract.feature_log import NAMES, event_log
from tests.contract.filter_evaluators import decision_holds, journeys_holds, orchestrator_holds
from tests.contract.parity_spec import CHANNELS, matching, where
from tests.contract.random_filters import random_event_filter
from wayline.common.patterns import pattern_problem
from wayline.common.timestamps import to_micros
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2
from wayline_journeys.store import JourneyStore

pytestmark = pytest.mark.slow

MATCHERS = 24  # per example, each over every event of the example's log
Op = analytics_pb2.FilterOperator
store = filter_evaluators.store  # the module's own database in the suite's chDB
_TYPES = (event_pb2.EVENT_TYPE_TRACK, event_pb2.EVENT_TYPE_PAGE, event_pb2.EVENT_TYPE_IDENTIFY)


def _filter(rng: random.Random) -> analytics_pb2.PropertyFilter:
    """A random filter every service takes: a pattern RE2 refuses (`[`) is refused by all of them when a
    matcher is saved, so it is drawn again."""
    while True:
        found = random_event_filter(rng, where)
        if found.operator != Op.FILTER_OPERATOR_MATCHES_REGEX or not pattern_problem(
            found.values[0].string_value
        ):
            return found


def _matcher(rng: random.Random) -> analytics_pb2.EventMatcher:
    """A matcher of one or two random filters; a fifth of them also name an event, a type or channels."""
    filters = [_filter(rng) for _ in range(rng.choice([1, 1, 1, 2]))]
    if rng.random() < 0.8:
        return matching("", event_pb2.EVENT_TYPE_UNSPECIFIED, (), *filters)
    return matching(
        rng.choice(["", *NAMES]),
        rng.choice([event_pb2.EVENT_TYPE_UNSPECIFIED, *_TYPES]),
        tuple(rng.sample(CHANNELS, rng.choice([0, 1, 2]))),
        *filters,
    )


def _with_context(seed: int, event: event_pb2.Event) -> event_pb2.Event:
    """The event with the parts of the context CONTEXT_POOLS reads, at random (the log sets the others); a
    copy received again (a retry, a redelivery) gets the same ones, as its sender sent one event."""
    rng = random.Random(f"{seed}/{event.event_id}")
    context = event.context
    if rng.random() < 0.5:
        context.extra.update(
            {
                "coupon_code": rng.choice(
                    ["SPRING", 10.0, -0.0, True, None, {"a": 1.0}, ["x"], "2026-10-11"]
                ),
                "utmTerm": rng.choice(["shoes", "", "Shoes"]),
                **({"nested": {"level": rng.choice([1.0, "2", None])}} if rng.random() < 0.5 else {}),
            }
        )
    if rng.random() < 0.3:
        context.traits.update({"tier": rng.choice(["gold", 1.0, None, {"x": "gold"}])})
    if rng.random() < 0.3:
        context.timezone = rng.choice(["Europe/Paris", "America/New_York"])
        context.user_agent = rng.choice(["Mozilla/5.0 (X11)", "curl/8"])
        context.page.url = rng.choice(["https://example.com/a", "http://x.test/"])
    if rng.random() < 0.4:
        context.location.latitude = rng.choice([0.0, -0.0, 48.85, -33.9])
        context.device.ad_tracking_enabled = rng.choice([True, False])
        context.device.display_density = rng.choice([0.0, 2.0, 2.5])
    return event


def _shown(event: event_pb2.Event, matcher: analytics_pb2.EventMatcher) -> str:
    read = json_format.MessageToDict(matcher, preserving_proto_field_name=True)
    return f"{read} on {json_format.MessageToJson(event, indent=None)}"


# A tenth of the profile's examples: 10 in CI (about 3 s), 500 with `--hypothesis-profile wayline-deep`.
@settings(max_examples=examples(10))
@given(log_seed=st.integers(0, 2**32 - 1), filter_seed=st.integers(0, 2**32 - 1))
def test_the_three_evaluators_agree_on_random_filters(
    store: JourneyStore, log_seed: int, filter_seed: int
) -> None:
    rng = random.Random(filter_seed)
    start = to_micros(datetime(2026, 10, 1, tzinfo=UTC) - timedelta(days=3))
    events = [_with_context(filter_seed, d.event) for d in event_log(log_seed, start, persons=1, span_days=3)]
    matchers = [_matcher(rng) for _ in range(MATCHERS)]
    offline = journeys_holds(store, events, matchers)
    found = {
        "decision": decision_holds(events, matchers),
        "orchestrator": orchestrator_holds(events, matchers),
    }
    disagreements = [
        f"{who} says {said[i][j]}, journeys {offline[i][j]}: {_shown(e, m)}"
        for who, said in found.items()
        for i, e in enumerate(events)
        for j, m in enumerate(matchers)
        if said[i][j] != offline[i][j]
    ]
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements[:10])
