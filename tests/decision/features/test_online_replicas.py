"""Two decision services sharing the online state in one real Redis (WAYLINE_DECISION_FEATURE_STATE=redis),
over real gRPC: events ObserveEvents gave replica A are read through replica B, from the state (ONLINE),
with the values the in-process state gives for the same events and journeys' GetProfileFeatures gives at
the same time; a restarted replica reads the state on (Redis keeps it: no change log is written or
replayed, the replica's snapshot holds only its own bookkeeping); a snapshot of the other kind of state is
not restored; while Redis is down reads go to journeys and ObserveEvents is UNAVAILABLE."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from tests.decision.features.online import (
    SETTLE_AFTER_S,
    Rig,
    decision_settings,
    event,
    new_tenant,
    now_us,
    running,
    spec,
)
from tests.redis import redis_url, running_redis  # noqa: F401 - the session's server
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.reader import FeatureOrigin
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState
from wayline_decision.settings import DecisionSettings

pytestmark = pytest.mark.slow

SPEC = spec()
COMPILED = compile_spec(SPEC, "feature_spec.")


def _settings(data_dir: Path, journeys: Server, url: str) -> DecisionSettings:
    return decision_settings(data_dir, journeys, None, feature_state="redis", redis_url=SecretStr(url))


def _in_process(*events: event_pb2.Event) -> InProcessFeatureState:
    """What one process consuming every event would hold."""
    state = InProcessFeatureState(int(SETTLE_AFTER_S * 1_000_000))
    state.register(COMPILED)
    for found in events:
        state.observe(observed_event(found))
    return state


def _exact(rig: Rig, tenant: str, person: str, as_of: int, *consumed: event_pb2.Event) -> list[Any]:
    read = rig.read_online(tenant, SPEC, person, as_of)
    assert read.origin is FeatureOrigin.ONLINE, person
    assert read.values == _in_process(*consumed).values(COMPILED, person, as_of), person
    assert read.values == rig.profile(tenant, SPEC, person, as_of), person
    return read.values


def test_replicas_read_the_events_any_of_them_observed_and_keep_them_across_restarts(
    tmp_path: Path,
    journeys_server: Server,
    redis_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    tenant = new_tenant("replicas")
    first, second = (
        _settings(tmp_path / "a", journeys_server, redis_url),
        _settings(tmp_path / "b", journeys_server, redis_url),
    )
    since = now_us()
    with running(first, journeys_server) as a, running(second, journeys_server) as b:
        for rig in (a, b):
            assert isinstance(rig.runtime.states.for_tenant(tenant), RedisFeatureState)
            rig.runtime.features.register(tenant, SPEC, since)
        time.sleep(SETTLE_AFTER_S)
        to_a = [
            event("ada", hours_ago=100, price=1.5, plan="basic"),
            event("ada", hours_ago=30, name="Checkout", price=0.1),
            event("ada", hours_ago=10, tier="gold"),
            event("ben", hours_ago=1, price=2.5, plan="pro"),
        ]
        a.feed(tenant, *to_a)
        to_b = [event("ada", hours_ago=2, price=0.2, plan="trial")]
        b.feed(tenant, *to_b)
        assert a.observe(tenant, to_a[0]) == 1  # a copy, through A again: counted once
        as_of = now_us()
        for person in ("ada", "ben"):
            read_by_b = _exact(b, tenant, person, as_of, *to_a, *to_b)
            assert _exact(a, tenant, person, as_of, *to_a, *to_b) == read_by_b
        assert b.read(tenant, SPEC, "ada", as_of).values[0] == 4.0
        assert b.read(tenant, SPEC, "ada", as_of).values[2] == 1.5 + 0.1 + 0.2

    for directory in (tmp_path / "a", tmp_path / "b"):  # Redis keeps the state: no change log
        features = directory / "decision" / "features"
        assert not list(features.glob("changes-*.jsonl"))
        assert (features / "snapshot.jsonl").exists()  # the replica's own bookkeeping

    with running(first, journeys_server) as a, running(second, journeys_server) as b:  # both restarted
        later = [event("ben", hours_ago=0.5, price=4.0)]
        a.feed(tenant, *later)
        after = now_us()
        for person in ("ada", "ben"):
            read = b.read(tenant, SPEC, person, after)
            assert read.origin is FeatureOrigin.ONLINE, person  # whole, without asking journeys again
            assert read.values == _in_process(*to_a, *to_b, *later).values(COMPILED, person, after)
            assert read.values == b.profile(tenant, SPEC, person, after)
            assert a.read(tenant, SPEC, person, after).values == read.values
        assert b.read(tenant, SPEC, "ben", after).values[2] == 2.5 + 4.0


def test_switching_the_kind_of_state_starts_afresh_instead_of_claiming_coverage(
    tmp_path: Path,
    journeys_server: Server,
    redis_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    """The in-process snapshot and log do not describe the Redis state, nor a Redis replica's snapshot an
    in-process one: restoring either would read persons online with events the state never had."""
    tenant = new_tenant("switch")
    in_process = decision_settings(tmp_path, journeys_server, None)
    shared = _settings(tmp_path, journeys_server, redis_url)
    features = tmp_path / "decision" / "features"
    with running(in_process, journeys_server) as rig:
        rig.runtime.features.register(tenant, SPEC, now_us())
        time.sleep(SETTLE_AFTER_S)
        rig.feed(tenant, event("cy", hours_ago=3, price=1.0))
        assert rig.read_online(tenant, SPEC, "cy", now_us()).origin is FeatureOrigin.ONLINE
    (features / "changes-00000099.jsonl").write_text("")  # as a killed in-process replica leaves it
    with running(shared, journeys_server) as rig:
        assert not list(features.glob("changes-*.jsonl"))  # their events went to the in-process state
        read = rig.read(tenant, SPEC, "cy", now_us())
        assert read.origin is FeatureOrigin.JOURNEYS  # the spec is new to this state
        assert read.values[0] == 1.0
        time.sleep(SETTLE_AFTER_S)
        rig.feed(tenant, event("dee", hours_ago=1, price=2.0))
        assert rig.read_online(tenant, SPEC, "dee", now_us()).origin is FeatureOrigin.ONLINE
    with running(in_process, journeys_server) as rig:  # which never saw dee's event
        for person, count in (("cy", 1.0), ("dee", 1.0)):
            read = rig.read(tenant, SPEC, person, now_us())
            assert read.origin is FeatureOrigin.JOURNEYS, person
            assert read.values[0] == count, person


def test_while_redis_is_down_reads_go_to_journeys_and_observe_is_unavailable(
    tmp_path: Path, journeys_server: Server
) -> None:
    tenant = new_tenant("down")
    with ExitStack() as redis_up:
        settings = _settings(tmp_path, journeys_server, redis_up.enter_context(running_redis()))
        with running(settings, journeys_server) as rig:
            rig.runtime.features.register(tenant, SPEC, now_us())
            time.sleep(SETTLE_AFTER_S)
            rig.feed(tenant, event("eve", hours_ago=2, price=3.0))
            assert rig.read_online(tenant, SPEC, "eve", now_us()).origin is FeatureOrigin.ONLINE
            redis_up.close()  # Redis stops; the replica goes on
            read = rig.read(tenant, SPEC, "eve", now_us())
            assert read.origin is FeatureOrigin.JOURNEYS
            assert read.values[2] == 3.0
            other = feature_pb2.FeatureSpec()
            other.CopyFrom(SPEC)
            other.version = "2"
            assert rig.read(tenant, other, "eve", now_us()).origin is FeatureOrigin.JOURNEYS  # not registered
            with pytest.raises(grpc.RpcError) as refused:
                rig.observe(tenant, event("eve", hours_ago=1, price=1.0))
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
