"""The online feature state, both implementations (state.py in process, redis_state.py on a real Redis):
every aggregation and default, idempotency, copies received later, out-of-order arrival, windows passing,
events received or happening after the read excluded, the horizon; and, on generated logs, agreement with a
scan of every event (state_reference.py) whatever the order of arrival and however much has settled; person
merges and erasures (a merge reads as if every event had been consumed under the survivor)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from google.protobuf import duration_pb2, struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.decision.features.state_reference import reference_values
from tests.redis import redis_url, unique_tenant  # noqa: F401 - the session's server
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.model import DAY_US, CompiledSpec, ObservedEvent
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState, OutsideRetention

State = InProcessFeatureState | RedisFeatureState
NewState = Callable[[int], State]

A = feature_pb2.FeatureAggregation
HOUR = DAY_US // 24
MINUTE = HOUR // 60
CATEGORY = feature_pb2.FEATURE_VALUE_TYPE_CATEGORY


def _feature(
    name: str, aggregation: int, path: str = "", days: float | None = None, default: Any = None, **more: Any
) -> feature_pb2.FeatureDefinition:
    found = feature_pb2.FeatureDefinition(name=name, aggregation=aggregation, property=path, **more)  # type: ignore[arg-type]
    if days is not None:
        us = int(days * DAY_US)
        found.window.CopyFrom(duration_pb2.Duration(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000))
    if default is not None:
        value = struct_pb2.Value()
        value.string_value = default if isinstance(default, str) else value.string_value
        if not isinstance(default, str):
            value.number_value = default
        found.default_value.CopyFrom(value)
    return found


CHECKOUTS = analytics_pb2.EventMatcher(event_name="Checkout")
FEATURES = [
    _feature("events", A.FEATURE_AGGREGATION_COUNT),
    _feature("checkouts_2d", A.FEATURE_AGGREGATION_COUNT, days=2, default=0.0, events=CHECKOUTS),
    _feature("amount_sum", A.FEATURE_AGGREGATION_SUM, "properties.amount", default=0.0),
    _feature("amount_avg_3d", A.FEATURE_AGGREGATION_AVERAGE, "properties.amount", days=3),
    _feature("amount_min", A.FEATURE_AGGREGATION_MIN, "properties.amount"),
    _feature("amount_max_1d", A.FEATURE_AGGREGATION_MAX, "properties.amount", days=1),
    _feature("plans", A.FEATURE_AGGREGATION_COUNT_DISTINCT, "properties.plan"),
    _feature(
        "first_plan",
        A.FEATURE_AGGREGATION_FIRST_VALUE,
        "properties.plan",
        value_type=CATEGORY,
        categories=["a"],
    ),
    _feature(
        "last_plan_2d",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "properties.plan",
        days=2,
        default="none",
        value_type=CATEGORY,
        categories=["a"],
    ),
    _feature("tenure", A.FEATURE_AGGREGATION_DAYS_SINCE_FIRST),
    _feature("since_checkout", A.FEATURE_AGGREGATION_DAYS_SINCE_LAST, default=-1.0, events=CHECKOUTS),
    _feature("active_days", A.FEATURE_AGGREGATION_ACTIVE_DAYS),
    _feature("active_days_2d", A.FEATURE_AGGREGATION_ACTIVE_DAYS, days=2),
    _feature(
        "tier",
        A.FEATURE_AGGREGATION_PERSON_PROPERTY,
        "person.tier",
        default="unknown",
        value_type=CATEGORY,
        categories=["gold"],
    ),
]
SPEC = compile_spec(feature_pb2.FeatureSpec(name="s", version="1", features=FEATURES))
NAMES = [f.name for f in SPEC.features]


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def event(
    n: int, ts: int, rs: int | None = None, name: str = "Viewed", person: str = "p", **properties: Any
) -> ObservedEvent:
    kind = "identify" if name == "identify" else "track"
    return ObservedEvent(
        _id(n),
        person,
        ts,
        ts if rs is None else rs,
        kind,
        "" if kind == "identify" else name,
        "web",
        properties,
    )


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.slow)])
def new_state(request: pytest.FixtureRequest) -> Iterator[NewState]:
    """Makes an empty state of one implementation (a Redis one under a tenant of its own)."""
    if request.param == "in_process":
        yield InProcessFeatureState
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda settle_after: RedisFeatureState(client, unique_tenant(), settle_after)
    client.close()


def _state(new_state: NewState, *events: ObservedEvent, settle_after: int = 30 * DAY_US) -> State:
    state = new_state(settle_after)
    state.register(SPEC)
    for e in events:
        state.observe(e)
    return state


def _values(state: State, t: int, person: str = "p") -> dict[str, Any]:
    return dict(zip(NAMES, state.values(SPEC, person, t), strict=True))


DAY = DAY_US
LOG = [
    event(1, 1 * DAY, amount=10.0, plan="a"),
    event(2, 2 * DAY, name="Checkout", amount=2.5, plan="b"),
    event(3, 2 * DAY, name="Checkout", amount="12", plan={"k": 1.0}),  # same instant: event id decides
    event(4, 3 * DAY + HOUR, name="identify", tier="gold"),
    event(5, 3 * DAY + 2 * HOUR, plan=None, amount=-4.0),
]


def test_every_aggregation_reads_its_events(new_state: NewState) -> None:
    assert _values(_state(new_state, *LOG), 4 * DAY) == {
        "events": 5.0,
        "checkouts_2d": 2.0,
        "amount_sum": 8.5,  # the string "12" is skipped
        "amount_avg_3d": (-4.0 + 2.5 + 10.0) / 3,  # events at or after 1 day: the window includes its start
        "amount_min": -4.0,
        "amount_max_1d": -4.0,
        "plans": 3.0,  # "a", "b", {"k":1}; null is no value
        "first_plan": "a",
        "last_plan_2d": '{"k":1}',  # the later id at the same instant
        "tenure": 3.0,
        "since_checkout": 2.0,
        "active_days": 3.0,
        "active_days_2d": 2.0,
        "tier": "gold",
    }


def test_defaults_when_nothing_counts(new_state: NewState) -> None:
    empty = {
        "events": None,
        "checkouts_2d": 0.0,
        "amount_sum": 0.0,
        "amount_avg_3d": None,
        "amount_min": None,
        "amount_max_1d": None,
        "plans": None,
        "first_plan": None,
        "last_plan_2d": "none",
        "tenure": None,
        "since_checkout": -1.0,
        "active_days": None,
        "active_days_2d": None,
        "tier": "unknown",
    }
    assert _values(_state(new_state, *LOG), 4 * DAY, person="someone else") == empty
    assert _values(_state(new_state, *LOG), DAY) == empty  # nothing happened before the first event
    assert _values(_state(new_state, event(9, DAY, name="identify", tier=None)), 2 * DAY)["tier"] == "unknown"


def test_sums_add_in_ascending_order(new_state: NewState) -> None:
    state = _state(new_state, event(1, 1, amount=0.3), event(2, 2, amount=0.2), event(3, 3, amount=0.1))
    assert _values(state, DAY)["amount_sum"] == 0.6000000000000001  # 0.1 + 0.2 + 0.3, not 0.3 + 0.2 + 0.1


def test_an_event_counts_once_however_often_it_arrives(new_state: NewState) -> None:
    state = _state(new_state, *LOG)
    assert not state.observe(LOG[0])
    assert _values(state, 4 * DAY) == _values(_state(new_state, *LOG), 4 * DAY)


def test_a_copy_received_later_replaces_the_first(new_state: NewState) -> None:
    retry = dataclasses.replace(
        LOG[0], received_at_us=LOG[0].received_at_us + 10 * MINUTE, properties={"plan": "c"}
    )
    state = _state(new_state, *LOG, retry)
    assert state.observe(dataclasses.replace(retry, received_at_us=retry.received_at_us - MINUTE)) is False
    found = _values(state, 4 * DAY)
    assert (found["first_plan"], found["amount_sum"], found["events"]) == ("c", -1.5, 5.0)


def test_arrival_order_does_not_matter(new_state: NewState) -> None:
    shuffled = LOG[:]
    random.Random(3).shuffle(shuffled)
    assert _values(_state(new_state, *shuffled), 4 * DAY) == _values(_state(new_state, *LOG), 4 * DAY)


def test_windows_pass_and_forgotten_persons_go(new_state: NewState) -> None:
    state = _state(new_state, event(1, DAY, name="Checkout"))
    assert _values(state, DAY + 1)["checkouts_2d"] == 1.0
    assert _values(state, 3 * DAY)["checkouts_2d"] == 1.0  # the window includes its start
    assert _values(state, 3 * DAY + 1)["checkouts_2d"] == 0.0  # out of the window: the default
    assert _values(state, 3 * DAY + 1)["events"] == 1.0
    windowed = compile_spec(feature_pb2.FeatureSpec(name="w", version="1", features=[FEATURES[1]]))
    only = new_state(HOUR)
    only.register(windowed)
    only.observe(event(1, DAY, name="Checkout"))
    only.advance(10 * DAY)
    assert only.values(windowed, "p", 10 * DAY) == [0.0]
    assert not only.holds("p")  # nothing left to keep


def test_events_received_or_happening_after_the_read_do_not_count(new_state: NewState) -> None:
    late = event(1, DAY, rs=DAY + 30 * MINUTE, amount=1.0)  # received half an hour after it happened
    ahead = event(2, DAY + 20 * MINUTE, rs=DAY + 10 * MINUTE, amount=2.0)  # a sender's clock ahead
    state = _state(new_state, late, ahead)
    assert _values(state, DAY + 15 * MINUTE)["amount_sum"] == 0.0  # late not received, ahead not happened
    assert _values(state, DAY + 25 * MINUTE)["amount_sum"] == 2.0
    assert _values(state, DAY + 31 * MINUTE)["amount_sum"] == 3.0


def test_reads_before_the_horizon_and_late_events_are_refused(new_state: NewState) -> None:
    state = _state(
        new_state, event(1, DAY), event(2, 3 * DAY), settle_after=HOUR
    )  # the horizon: 3 days less an hour
    with pytest.raises(OutsideRetention):
        state.values(SPEC, "p", 2 * DAY)
    assert state.values(SPEC, "other", 2 * DAY)[0] is None  # no state, nothing to refuse
    assert not state.observe(event(3, DAY, rs=DAY + HOUR))
    assert state.late_events == 1


def _as(person: str, events: list[ObservedEvent]) -> list[ObservedEvent]:
    return [dataclasses.replace(e, person_id=person) for e in events]


def test_a_merge_reads_as_if_every_event_was_consumed_under_the_survivor(new_state: NewState) -> None:
    copy = dataclasses.replace(LOG[2], received_at_us=LOG[2].received_at_us + MINUTE)  # resolved to each
    for settle_after in (30 * DAY, HOUR):  # nothing settled yet; most of it settled (folds added up)
        state = _state(new_state, *_as("p", LOG[::2]), *_as("q", LOG[1::2]), copy, settle_after=settle_after)
        state.observe(dataclasses.replace(copy, person_id="q"))
        together = _state(new_state, *_as("q", LOG), settle_after=settle_after)
        together.observe(dataclasses.replace(copy, person_id="q"))
        state.merge("p", "q")
        for t in (4 * DAY, 5 * DAY, 9 * DAY):
            assert _values(state, t, "q") == _values(together, t, "q"), (settle_after, t)
            assert _values(state, t, "p") == _values(together, t, "p")  # the merged person is gone
        assert not state.holds("p")
        # Later events, and later copies of merged ones, go on under the survivor as in one history.
        retry = dataclasses.replace(LOG[0], person_id="q", received_at_us=4 * DAY, properties={"plan": "c"})
        for target in (state, together):
            assert target.observe(retry)
            assert not target.observe(retry)
            assert target.observe(event(9, 4 * DAY, person="q", name="Checkout", amount=1.0))
        assert _values(state, 5 * DAY, "q") == _values(together, 5 * DAY, "q")


def test_a_merge_into_a_person_never_seen_moves_the_person(new_state: NewState) -> None:
    state = _state(new_state, *LOG)
    state.merge("p", "p")  # the same person: nothing to do
    state.merge("nobody", "p")  # nothing kept of the merged person: nothing to do
    expected = _values(state, 4 * DAY)
    state.merge("p", "q")
    assert _values(state, 4 * DAY, "q") == expected
    assert not state.holds("p")
    assert state.holds("q")


def test_a_forgotten_person_reads_the_defaults_and_starts_again(new_state: NewState) -> None:
    state = _state(new_state, *LOG, *_as("q", LOG))
    state.forget("p")
    state.forget("nobody")
    assert not state.holds("p")
    assert _values(state, 4 * DAY) == _values(_state(new_state), 4 * DAY)
    assert _values(state, 4 * DAY, "q") == _values(_state(new_state, *LOG), 4 * DAY)  # others keep theirs
    assert state.observe(LOG[0])  # nothing remembered: a copy of a forgotten event is new
    assert _values(state, 4 * DAY) == _values(_state(new_state, LOG[0]), 4 * DAY)


def test_an_unregistered_spec_is_refused(new_state: NewState) -> None:
    other = compile_spec(feature_pb2.FeatureSpec(name="other", version="1", features=FEATURES[:1]))
    with pytest.raises(KeyError):
        _state(new_state).values(other, "p", DAY)


# ---- generated logs against the scan of every event -------------------------------------------------------

_PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "amount": st.sampled_from([0.1, 0.2, 0.3, 1e21, -1e21, 7.0, -0.0, "7", True, None]),
        "plan": st.sampled_from(["a", "b", 1.0, 1, True, None, {"x": 1.0, "y": 2.0}, {"y": 2.0, "x": 1}]),
    },
)
_EVENT = st.tuples(
    st.builds(lambda day, at: day * DAY + at, st.integers(0, 12), st.integers(0, DAY - 1)),  # timestamp
    st.sampled_from([0, 1, MINUTE, 3 * HOUR, 2 * DAY, -HOUR]),  # receipt delay
    st.sampled_from(["Viewed", "Checkout", "identify"]),
    st.sampled_from(["p", "q"]),
    _PROPERTIES,
    st.sampled_from([None, "same", "retry"]),  # delivered once, twice, or again later
)


@settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(_EVENT, min_size=10, max_size=60),
    st.sampled_from([MINUTE, HOUR, 30 * DAY]),
    st.sampled_from([None, "merge", "forget"]),
    st.randoms(),
)
def test_the_state_agrees_with_a_scan_of_every_event(
    new_state: NewState, raw: list[Any], settle_after: int, override: str | None, rng: random.Random
) -> None:
    """Whatever the order of arrival and however much has settled; with, at some point, p merged into q
    (p's later deliveries then resolve to q, as identity resolves them after a merge) or p forgotten."""
    deliveries = []
    for n, (ts, delay, name, person, properties, copy) in enumerate(raw):
        tier = {"tier": properties.get("plan")} if name == "identify" else properties
        e = event(n, ts, max(0, ts + delay), name, person, **tier)
        deliveries.append(e)
        if copy == "same":
            deliveries.append(e)
        elif copy == "retry":
            deliveries.append(
                dataclasses.replace(e, received_at_us=e.received_at_us + rng.randint(1, settle_after // 2))
            )
    deliveries.sort(key=lambda e: e.received_at_us)
    state = _state(new_state, settle_after=settle_after)
    times = [*sorted(rng.randint(0, 15 * DAY) for _ in range(5)), 15 * DAY]
    consumed: list[ObservedEvent] = []
    overridden_at, merged = rng.randrange(len(times)), False
    for i, t in enumerate(times):
        if i == overridden_at and override == "merge":
            state.merge("p", "q")
            consumed = [dataclasses.replace(e, person_id="q") if e.person_id == "p" else e for e in consumed]
            merged = True
        elif i == overridden_at and override == "forget":
            state.forget("p")
            consumed = [e for e in consumed if e.person_id != "p"]
        ahead = t + rng.choice([0, settle_after // 3])  # sometimes consume past the read: the slow path
        while deliveries and deliveries[0].received_at_us < ahead:
            delivered = deliveries.pop(0)
            if merged and delivered.person_id == "p":
                delivered = dataclasses.replace(delivered, person_id="q")
            consumed.append(delivered)
            state.observe(consumed[-1])
        for person in ("p", "q"):
            assert _same(state.values(SPEC, person, t), reference_values(SPEC, consumed, person, t)), (
                person,
                t,
            )


def _same(a: list[Any], b: list[Any]) -> bool:
    return all(type(x) is type(y) and x == y and str(x) == str(y) for x, y in zip(a, b, strict=True))


def test_spec_fixture_is_valid() -> None:
    assert isinstance(SPEC, CompiledSpec)
