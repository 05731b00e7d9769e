"""Online and offline features agree exactly (issue 10: "a test proves online and offline values agree
exactly for sampled customers and times"): the decision service's online state, fed a generated event log
in the order a sink delivers it (by received_at), gives for sampled (person, time) pairs the very values
journeys' GetProfileFeatures computes in ClickHouse over the same events, and so the same float32 model
inputs, bit for bit.

Every person (and one without events) is observed at times drawn over the whole span and at times put
exactly on events' timestamps and receipts (where an event starts to count). Half the times, the state has
already consumed what was received up to 30 minutes later, which it must leave out (its slow path). The
offline values come from ExportTrainingSet with the observations listed (one statement for hundreds of
pairs; with the cut-off after them, each sees what GetProfileFeatures sees at its time), and a sample of
pairs is also asked of GetProfileFeatures itself: each call costs seconds for a 60-feature spec on chDB.
The spec covers every aggregation, windowed and not, every operator and value type (feature_log.py,
parity_spec.py and random_filters.py say what the log and spec hold). Both implementations of the online
state are held to it: in process, and in Redis (a real redis-server) as several replicas share it."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
import redis

from tests.breadth import seeds
from tests.contract.feature_log import DAY, HOUR, MINUTE, Logged, event_log
from tests.contract.parity_spec import parity_spec
from tests.journeys.conftest import Journeys
from tests.redis import redis_url, unique_tenant  # noqa: F401 - the session's server
from wayline.common.feature_encoding import FeatureValue, python_value
from wayline.common.server import Server
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2, training_set_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.model import CompiledSpec
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState

pytestmark = pytest.mark.slow

SPAN_DAYS = 40
SETTLE_AFTER = HOUR


@pytest.fixture
def journeys(journeys_server: Server) -> Iterator[Journeys]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield Journeys(channel, f"parity-{uuid.uuid4().hex[:10]}")


def _same(a: FeatureValue, b: FeatureValue) -> bool:
    """Equal to the bit: same type, same value, same sign of zero."""
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b)  # type: ignore[arg-type]


def _row(spec: CompiledSpec, values: list[FeatureValue]) -> bytes:
    """The float32 model input row, as bytes (bit-identical rows, NaNs included)."""
    return np.array(spec.encoder.encode(values), dtype=np.float32).tobytes()


def _exported(
    journeys: Journeys, message: feature_pb2.FeatureSpec, pairs: list[tuple[str, int]]
) -> dict[tuple[str, int], list[FeatureValue]]:
    """ExportTrainingSet's values at listed observations, with the cut-off now: an event counts when it
    happened and was received before the observation time, exactly as GetProfileFeatures at that time."""
    observations = [
        training_set_pb2.Observation(person_id=p, observation_time=to_timestamp(from_micros(t)))
        for p, t in pairs
    ]
    request = pb.ExportTrainingSetRequest(spec=message, observations=observations, batch_size=10_000)
    found = {}
    for part in journeys.export_training_set(request):
        for row in part.rows.rows:
            key = (row.person_id, to_micros(row.observation_time.ToDatetime(UTC)))
            found[key] = [python_value(v) for v in row.feature_values]
    return found


def _profile(
    journeys: Journeys, message: feature_pb2.FeatureSpec, person: str, as_of: int
) -> list[FeatureValue]:
    request = pb.GetProfileFeaturesRequest(
        person=event_pb2.PersonRef(person_id=person), spec=message, as_of=to_timestamp(from_micros(as_of))
    )
    values = journeys.profile_features(request).features.values
    return [python_value(values[f.name]) for f in message.features]


class _Comparison:
    def __init__(self, spec: CompiledSpec) -> None:
        self.spec, self.compared, self.skipped, self.mismatches = spec, 0, 0, list[str]()

    def check(self, where: str, online: list[FeatureValue], offline: list[FeatureValue]) -> None:
        self.compared += 1
        for f, a, b in zip(self.spec.features, online, offline, strict=True):
            if not _same(a, b):
                self.mismatches.append(f"{f.name} {where}: online {a!r}, offline {b!r}")
        if _row(self.spec, online) != _row(self.spec, offline) and not self.mismatches:
            self.mismatches.append(f"encoded rows differ {where}")


def _retry_gaps(log: list[Logged]) -> dict[str, list[tuple[int, int]]]:
    """Per person, (first receipt, later receipt] of every event received twice at different times. The
    store keeps only the copy received last (ReplacingMergeTree by received_at), so as of a time in between
    it does not count the event at all, although it had been received: it answers with what it learned
    after that time, which the online state cannot know then (docs/adr/0022-online-feature-state.md)."""
    receipts: dict[str, list[Logged]] = {}
    for d in log:
        receipts.setdefault(d.event.event_id, []).append(d)
    gaps: dict[str, list[tuple[int, int]]] = {}
    for copies in receipts.values():
        times = sorted({d.received_us for d in copies})
        if len(times) > 1:
            gaps.setdefault(copies[0].event.person_id, []).append((times[0], times[-1]))
    return gaps


@pytest.fixture(params=["in_process", "redis"])
def online_state(request: pytest.FixtureRequest) -> Iterator[InProcessFeatureState | RedisFeatureState]:
    if request.param == "in_process":
        yield InProcessFeatureState(settle_after_us=SETTLE_AFTER)
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisFeatureState(client, unique_tenant(), settle_after_us=SETTLE_AFTER)
    client.close()


@pytest.mark.parametrize("seed", seeds(1, 2))
def test_online_features_equal_offline_features(
    journeys: Journeys, online_state: InProcessFeatureState | RedisFeatureState, seed: int
) -> None:
    start = to_micros(datetime.now(UTC) - timedelta(days=SPAN_DAYS + 12))
    log = event_log(seed, start, persons=8, span_days=SPAN_DAYS)
    for i in range(0, len(log), 400):
        journeys.write(*(d.event for d in log[i : i + 400]))
    message = parity_spec(seed, random_features=24)
    spec = compile_spec(message)
    state = online_state
    state.register(spec)

    # Times over the span and past it, and exactly on timestamps and receipts; every person at each.
    rng = random.Random(seed)
    persons = [*sorted({d.event.person_id for d in log}), "nobody"]
    times = {start + rng.randint(0, (SPAN_DAYS + 10) * DAY) for _ in range(30)}
    for d in rng.sample(log, 12):
        times |= {to_micros(d.event.timestamp.ToDatetime(UTC)), d.received_us}
    pairs = [(p, t) for t in sorted(times) for p in persons]
    offline = _exported(journeys, message, pairs)
    assert len(offline) == len(pairs)
    asked = set(rng.sample(pairs, 4))  # also through GetProfileFeatures itself

    gaps = _retry_gaps(log)
    comparison, fed, fed_until, profiled = _Comparison(spec), 0, start, 0
    for t in sorted(times):
        # Half the times, events received up to 30 minutes after t are consumed before reading at t.
        fed_until = max(fed_until, t + rng.choice([0, rng.randint(1, 30 * MINUTE)]))
        while fed < len(log) and log[fed].received_us < fed_until:
            state.observe(observed_event(log[fed].event))
            fed += 1
        for person in persons:
            if any(first < t <= later for first, later in gaps.get(person, ())):
                comparison.skipped += 1
                continue
            online = state.values(spec, person, t)
            comparison.check(f"of {person} at {t}", online, offline[(person, t)])
            if (person, t) in asked:
                profiled += 1
                comparison.check(
                    f"of {person} at {t} (GetProfileFeatures)", online, _profile(journeys, message, person, t)
                )
    assert not comparison.mismatches, f"{len(comparison.mismatches)} mismatches:\n" + "\n".join(
        comparison.mismatches[:40]
    )
    assert comparison.compared + comparison.skipped == len(pairs) + profiled
    assert comparison.skipped < len(pairs) // 10
