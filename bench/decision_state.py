"""`python -m bench decision-state`: the online feature state's read and write costs, in process and in Redis
(Debian's redis-server on a free port, started here), in the same run.

Persons with 300 events each over 40 days (page views, checkouts with amounts and plans, identifies), a
15-feature spec (every aggregation, windowed and not), consumed in the order a sink delivers them (by
receipt), with the default settle horizon (one hour), so what is kept is what a live replica keeps: the
settled folds and the last days' events. Then `values()` at "now" for every person:
- in process: the first read after the person's last event (summaries computed) and a repeated read
  (cached summaries);
- Redis: every read is one HMGET and the summaries computed in this process; beside it the round trip
  floor, a bare HMGET of one missing field through the same client.
`observe()` is the mean over every event consumed (Redis: one EVALSHA, plus a WATCH transaction each time
a person is settled).
Beside the in-process reads, the same spec plus a LIFECYCLE_STAGE feature of the built-in model (issue 10):
what a stage adds to a read (its model lowered to six counts over the same state).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial

import redis
from rich.console import Console
from rich.table import Table

from tests.decision.features.test_state import CHECKOUTS, FEATURES, A, _feature, event
from tests.redis import running_redis
from wayline.journeys.v1 import feature_pb2
from wayline_decision.features.model import DAY_US, ObservedEvent
from wayline_decision.features.redis_state import RedisFeatureState
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL

__all__ = ["main"]

EVENTS_PER_PERSON = 300
SPAN_DAYS = 40
SPEC_MESSAGE = feature_pb2.FeatureSpec(
    name="bench",
    version="1",
    features=[*FEATURES, _feature("checkouts_7d", A.FEATURE_AGGREGATION_COUNT, days=7, events=CHECKOUTS)],
)
SPEC = compile_spec(SPEC_MESSAGE)

STAGED = compile_spec(
    feature_pb2.FeatureSpec(
        name="bench-staged",
        version="1",
        features=[
            *SPEC_MESSAGE.features,
            feature_pb2.FeatureDefinition(
                name="stage",
                aggregation=feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE,
                lifecycle_model=BUILT_IN_MODEL,
            ),
        ],
    )
)


def _log(persons: int, seed: int) -> list[ObservedEvent]:
    rng = random.Random(seed)
    found = []
    for p in range(persons):
        for i in range(EVENTS_PER_PERSON):
            ts = rng.randint(0, SPAN_DAYS * DAY_US)
            name = rng.choice(["Viewed"] * 6 + ["Checkout"] * 3 + ["identify"])
            n = p * EVENTS_PER_PERSON + i
            received = ts + rng.choice([0, 1_000_000, 60_000_000])
            if name == "identify":
                found.append(event(n, ts, received, name, f"p{p}", tier=rng.choice(["gold", "silver"])))
            else:
                amount = round(rng.uniform(1, 200), 2)
                found.append(event(n, ts, received, name, f"p{p}", amount=amount, plan=rng.choice("abc")))
    return sorted(found, key=lambda e: e.received_at_us)


def _per_call_us(work: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - start) / calls * 1e6


def _timed_us(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 1e6


def _row(table: Table, name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9)]
    table.add_row(name, f"{statistics.median(ordered):.0f}", f"{p90:.0f}", str(len(ordered)))


def main(persons: int = 200, seed: int = 1) -> None:
    log = _log(persons, seed)
    now = max(e.received_at_us for e in log) + 60_000_000
    people = sorted({e.person_id for e in log})
    local = InProcessFeatureState()
    local.register(SPEC)
    staged = InProcessFeatureState()
    staged.register(STAGED)
    for e in log:
        staged.observe(e)
    with running_redis() as url:
        client = redis.Redis.from_url(url)
        shared = RedisFeatureState(client, f"bench-{seed}")
        shared.register(SPEC)
        observe_local = _per_call_us(lambda: [local.observe(e) for e in log], 1) / len(log)
        observe_shared = _per_call_us(lambda: [shared.observe(e) for e in log], 1) / len(log)
        assert all(local.values(SPEC, p, now) == shared.values(SPEC, p, now) for p in people)
        for p in people:  # a new event for each person: the in-process summaries are computed again
            local.observe(event(10**9 + len(p), now - 1, now - 1, "Viewed", p))
            staged.observe(event(10**9 + len(p), now - 1, now - 1, "Viewed", p))
        first = [_timed_us(partial(local.values, SPEC, p, now)) for p in people]
        cached = [_timed_us(partial(local.values, SPEC, p, now)) for p in people for _ in range(5)]
        staged_first = [_timed_us(partial(staged.values, STAGED, p, now)) for p in people]
        staged_cached = [_timed_us(partial(staged.values, STAGED, p, now)) for p in people for _ in range(5)]
        redis_reads = [_timed_us(partial(shared.values, SPEC, p, now)) for p in people for _ in range(5)]
        key = f"wayline:decision:features:v1:{{bench-{seed}}}:person:nobody"
        floor = [_timed_us(lambda: client.hmget(key, ["h"])) for _ in range(len(redis_reads))]
        kept = statistics.median(client.memory_usage(shared._person_key(p)) or 0 for p in people)
        client.close()
    table = Table(title=f"values(): {len(SPEC.features)} features, {EVENTS_PER_PERSON} events/person, µs")
    for column in ("read", "p50", "p90", "reads"):
        table.add_column(column)
    _row(table, "in process, first read after an event", first)
    _row(table, "in process, repeated read", cached)
    _row(table, "in process + lifecycle stage, first read after an event", staged_first)
    _row(table, "in process + lifecycle stage, repeated read", staged_cached)
    _row(table, "Redis, every read", redis_reads)
    _row(table, "Redis round trip floor (bare HMGET)", floor)
    console = Console()
    console.print(table)
    console.print(
        "lifecycle stage / without, p50: first read "
        f"{statistics.median(staged_first) / statistics.median(first):.2f}x, repeated read "
        f"{statistics.median(staged_cached) / statistics.median(cached):.2f}x"
    )
    console.print(
        f"observe(): in process {observe_local:.1f} µs/event, Redis {observe_shared:.1f} µs/event "
        f"({len(log)} events, {persons} persons); Redis keeps a median {kept / 1024:.1f} KiB per person"
    )
