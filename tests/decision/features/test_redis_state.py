"""What only the Redis-backed state has to show (its semantics are test_state.py's, run on both): several
replicas sharing one tenant's state, copies consumed by two replicas at once, slot plans merged across
replicas, tenants kept apart, expiry, Redis down, and the factory the settings choose through."""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
from collections.abc import Iterator

import pytest
import redis
from google.protobuf import duration_pb2
from pydantic import SecretStr, ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.decision.features.test_state import DAY, HOUR, MINUTE, NAMES, SPEC, event
from tests.redis import redis_url, unique_tenant  # noqa: F401 - the session's server
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.errors import FeatureStateUnavailable
from wayline_decision.features.factory import open_feature_state
from wayline_decision.features.model import ObservedEvent
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState
from wayline_decision.settings import DecisionSettings

pytestmark = pytest.mark.slow

A = feature_pb2.FeatureAggregation
CHECKOUTS = analytics_pb2.EventMatcher(event_name="Checkout")


def _count(name: str, days: int | None = None) -> feature_pb2.FeatureDefinition:
    found = feature_pb2.FeatureDefinition(
        name=name, aggregation=A.FEATURE_AGGREGATION_COUNT, events=CHECKOUTS
    )
    if days is not None:
        found.window.CopyFrom(duration_pb2.Duration(seconds=days * 86_400))
    return found


WINDOWED = compile_spec(feature_pb2.FeatureSpec(name="w", version="1", features=[_count("checkouts_2d", 2)]))
FOREVER = compile_spec(feature_pb2.FeatureSpec(name="f", version="1", features=[_count("checkouts")]))


@pytest.fixture
def clients(redis_url: str) -> Iterator[list[redis.Redis]]:  # noqa: F811 - the fixture imported above
    """One client per replica: replicas share nothing but the server."""
    found = [redis.Redis.from_url(redis_url) for _ in range(2)]
    yield found
    for client in found:
        client.close()


def _log(n: int, seed: int) -> list[ObservedEvent]:
    rng = random.Random(seed)
    names = ["Viewed", "Checkout", "identify"]
    found = []
    for i in range(n):
        ts = rng.randint(0, 20 * DAY)
        name = rng.choice(names)
        properties: dict[str, object] = {"tier": rng.choice(["gold", "silver"])}
        if name != "identify":
            properties = {"amount": rng.choice([0.1, 0.2, 7.0, "x"]), "plan": rng.choice(["a", "b", 1.0])}
        found.append(
            event(i, ts, ts + rng.choice([0, MINUTE, HOUR]), name, rng.choice(["p", "q"]), **properties)
        )
    return sorted(found, key=lambda e: e.received_at_us)


def test_replicas_sharing_a_tenant_read_what_one_process_consuming_everything_reads(
    clients: list[redis.Redis],
) -> None:
    tenant = unique_tenant()
    # Registered first by one replica only: the replicas number their slots differently.
    other = compile_spec(feature_pb2.FeatureSpec(name="other", version="1", features=[_count("c_2d", 2)]))
    replicas = [RedisFeatureState(clients[0], tenant, HOUR), RedisFeatureState(clients[1], tenant, HOUR)]
    replicas[1].register(other)
    for replica in replicas:
        replica.register(SPEC)
    reference = InProcessFeatureState(HOUR)
    reference.register(SPEC)
    log = _log(300, seed=7)
    for n, e in enumerate(log):
        reference.observe(e)
        replicas[n % 2].observe(e)  # each replica consumes a share
    for t in (20 * DAY + 2 * HOUR, 21 * DAY):  # at or after the horizon
        for person in ("p", "q", "nobody"):
            expected = reference.values(SPEC, person, t)
            assert replicas[0].values(SPEC, person, t) == expected
            assert replicas[1].values(SPEC, person, t) == expected


def test_copies_consumed_by_two_replicas_at_once_count_once(clients: list[redis.Redis]) -> None:
    tenant = unique_tenant()
    replicas = [RedisFeatureState(client, tenant, HOUR) for client in clients]
    for replica in replicas:
        replica.register(SPEC)
    log = _log(200, seed=3)
    retried = [dataclasses.replace(e, received_at_us=e.received_at_us + MINUTE) for e in log[::5]]
    deliveries = sorted([*log, *retried], key=lambda e: e.received_at_us)  # one in five again, later
    changed = [0, 0]

    def consume(i: int) -> None:  # both replicas get every delivery
        for e in deliveries:
            changed[i] += replicas[i].observe(e)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reference = InProcessFeatureState(HOUR)
    reference.register(SPEC)
    for e in deliveries:
        reference.observe(e)
    # Each delivery changed the state in one replica at most (a retry consumed before its first copy
    # leaves that copy nothing to change).
    assert len(log) <= sum(changed) <= len(deliveries)
    for person in ("p", "q"):
        assert replicas[0].values(SPEC, person, 21 * DAY) == reference.values(SPEC, person, 21 * DAY)


def test_a_replica_settling_keeps_the_history_another_replicas_spec_needs(clients: list[redis.Redis]) -> None:
    tenant = unique_tenant()
    windowed, forever = (
        RedisFeatureState(clients[0], tenant, HOUR),
        RedisFeatureState(clients[1], tenant, HOUR),
    )
    windowed.register(WINDOWED)  # on its own it would drop checkouts older than 2 days
    forever.register(FOREVER)  # same slot, all history: the shared plan keeps it
    for day in range(10):
        windowed.observe(event(day, day * DAY, name="Checkout"))  # settles as the horizon moves
    assert forever.values(FOREVER, "p", 10 * DAY) == [10.0]
    assert windowed.values(WINDOWED, "p", 10 * DAY) == [2.0]  # days 8 and 9: the window includes its start


def test_tenants_never_share_keys(clients: list[redis.Redis]) -> None:
    a, b = unique_tenant(), unique_tenant()
    first, second = RedisFeatureState(clients[0], a), RedisFeatureState(clients[0], b)
    for state in (first, second):
        state.register(SPEC)
    first.observe(event(1, DAY, name="Checkout", amount=5.0))
    assert second.values(SPEC, "p", 2 * DAY) == [d.default for d in SPEC.features]
    assert dict(zip(NAMES, first.values(SPEC, "p", 2 * DAY), strict=True))["amount_sum"] == 5.0
    keys = list(clients[0].scan_iter(match=f"*{a}*"))
    assert keys
    assert all(key.decode().startswith(f"wayline:decision:features:v1:{{{a}}}:") for key in keys)
    with pytest.raises(ValueError, match="cannot name Redis keys"):
        RedisFeatureState(clients[0], "a}:b")


def test_persons_whose_slots_all_have_windows_expire(clients: list[redis.Redis]) -> None:
    state = RedisFeatureState(clients[0], unique_tenant(), HOUR)
    state.register(WINDOWED)
    state.observe(event(1, DAY, name="Checkout", person="brief"))
    ttl_ms = clients[0].pttl(state._person_key("brief"))
    # The event counts for 2 days; then one settle_after and a step to settle it, one more of margin.
    assert 2 * DAY // 1000 < ttl_ms <= (2 * DAY + 2 * HOUR + HOUR // 4) // 1000
    state.register(FOREVER)
    state.observe(event(2, DAY + 1, name="Checkout", person="brief"))
    assert clients[0].pttl(state._person_key("brief")) == -1  # now kept: all history counts


def test_redis_down_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # No client-side retries: redis-py's default (10 retries, backoff up to 1 s) only delays the same
    # ConnectionError the state turns into FeatureStateUnavailable, by about 3.5 s a call.
    client = redis.Redis(
        port=port, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    state = RedisFeatureState(client, unique_tenant())
    with pytest.raises(FeatureStateUnavailable) as caught:
        state.register(SPEC)
    assert caught.value.reason == "FEATURE_STATE_UNAVAILABLE"
    assert caught.value.retry_after == 1.0
    with pytest.raises(FeatureStateUnavailable, match="retry with backoff"):
        state.observe(event(1, DAY))
    client.close()


def test_the_settings_choose_the_state(redis_url: str) -> None:  # noqa: F811 - the fixture imported above
    in_process = open_feature_state(DecisionSettings())
    assert isinstance(in_process.for_tenant("acme"), InProcessFeatureState)
    with pytest.raises(ValidationError, match="WAYLINE_DECISION_REDIS_URL"):
        DecisionSettings(feature_state="redis")
    shared = open_feature_state(DecisionSettings(feature_state="redis", redis_url=SecretStr(redis_url)))
    try:
        tenant = unique_tenant()
        state = shared.for_tenant(tenant)
        assert isinstance(state, RedisFeatureState)
        assert shared.for_tenant(tenant) is state
        state.register(SPEC)
        assert state.observe(event(1, DAY))
    finally:
        shared.close()


def test_merges_lose_no_event_observed_meanwhile_on_either_person(clients: list[redis.Redis]) -> None:
    tenant = unique_tenant()
    consumer, merger = (
        RedisFeatureState(clients[0], tenant, HOUR),
        RedisFeatureState(clients[1], tenant, HOUR),
    )
    for replica in (consumer, merger):
        replica.register(FOREVER)
    log = [event(i, DAY + i, name="Checkout", person="pq"[i % 2]) for i in range(400)]
    done = threading.Event()

    def merge_again_and_again() -> None:  # the merged person comes back with the next event of p
        while not done.is_set():
            merger.merge("p", "q")

    thread = threading.Thread(target=merge_again_and_again)
    thread.start()
    try:
        for e in log:
            assert consumer.observe(e)
    finally:
        done.set()
        thread.join()
    merger.merge("p", "q")
    assert consumer.values(FOREVER, "q", 2 * DAY) == [400.0]
    assert not consumer.holds("p")
