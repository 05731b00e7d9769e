"""A model rollout under closed-loop Decide load: the driver shared by `tests/decision/test_hot_swap.py` and
`python -m bench decision-rollout`.

`run_rollout` takes the address of a decision service (or of the gateway in front of it) and the metadata
of a tenant that has two versions of one model pushed and catalogue actions for the model's action ids. It
deploys the stable version in full, starts K callers (each on its own channel, each drawing person ids from
a large pool, so the canary's share is measured over many persons), then walks the rollout while they call:
the second version as a 10% canary, promoted (SetModelTraffic with it as the stable version: the contract's
way to promote a canary), then RollbackModel back to the previous stable version.

Every call is recorded with when it started and ended, and with the version that served it
(DecideResponse.model_version) or the RpcError it raised. A call belongs to the phase in which it started.
The split of a phase is counted only over calls that started after the phase's traffic change returned and
ended before the next change was issued: a call in flight across a swap keeps the version it was routed to
until it ends (the model server's copy-on-write tables), and a call queued in the server while a change is
made is routed by whichever traffic holds when a handler takes it; both are correct, not failures. Failures
are counted over every call.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
from wayline.event.v1 import event_pb2
from wayline_decision.serving.routing import canary_bucket
from wayline_decision.serving.traffic import BASIS_POINTS

__all__ = ["Call", "PhasePlan", "PhaseReport", "RolloutPlan", "phase_table", "pool_share", "run_rollout"]

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Call:
    """One Decide call: when it started and ended (perf_counter seconds), for whom, and what came of it."""

    started: float
    ended: float
    person: str
    version: str = ""  # the version that served it; empty when it failed
    error: str = ""  # "CODE: details" when it raised


@dataclass(frozen=True, slots=True)
class PhasePlan:
    """A phase: its name, the share of persons the new version should serve in it, how long it runs (at
    least `seconds`, then until its settled calls have reached `min_persons` distinct persons, at most
    `max_seconds`), and the traffic change that opens it (None: the phase the load starts in)."""

    name: str
    expected_share: float
    seconds: float
    change: Callable[[pb_grpc.DecisionServiceStub], object] | None = None
    min_persons: int = 0
    max_seconds: float = 0.0


@dataclass(frozen=True)
class RolloutPlan:
    model_id: str
    stable_version: str
    new_version: str
    canary_percent: int = 10
    callers: int = 8
    persons: int = 20_000
    channel: event_pb2.Channel.ValueType = event_pb2.CHANNEL_WEB
    placement: str = "home_hero"
    seconds: tuple[float, float, float, float] = (
        4.0,
        10.0,
        5.0,
        5.0,
    )  # v1 full, canary, promoted, rolled back
    # The canary's share is a sample of persons: its noise is sqrt(p(1 - p) / n), 0.67 points at 2,000
    # persons, so the canary phase goes on (up to its cap) until that many have been decided for.
    canary_min_persons: int = 2_000
    canary_max_seconds: float = 60.0
    timeout_s: float = 30.0

    def phases(self, metadata: Metadata) -> list[PhasePlan]:
        name = f"models/{self.model_id}"

        def canary(stub: pb_grpc.DecisionServiceStub) -> object:
            request = pb.DeployModelRequest(
                name=name,
                version=self.new_version,
                mode=pb.DEPLOY_MODE_CANARY,
                canary_percent=self.canary_percent,
            )
            return stub.DeployModel(request, metadata=metadata, timeout=self.timeout_s)

        def promote(stub: pb_grpc.DecisionServiceStub) -> object:
            traffic = model_pb2.ModelTraffic(stable_version=self.new_version)
            request = pb.SetModelTrafficRequest(name=name, traffic=traffic)
            return stub.SetModelTraffic(request, metadata=metadata, timeout=self.timeout_s)

        def roll_back(stub: pb_grpc.DecisionServiceStub) -> object:
            request = pb.RollbackModelRequest(name=name)  # to the previous stable version
            return stub.RollbackModel(request, metadata=metadata, timeout=self.timeout_s)

        full, canaried, promoted, rolled_back = self.seconds
        return [
            PhasePlan(f"v{self.stable_version} full", 0.0, full),
            PhasePlan(
                f"v{self.new_version} canary {self.canary_percent}%",
                self.canary_percent / 100,
                canaried,
                canary,
                min_persons=self.canary_min_persons,
                max_seconds=self.canary_max_seconds,
            ),
            PhasePlan(f"v{self.new_version} promoted", 1.0, promoted, promote),
            PhasePlan(f"rolled back to v{self.stable_version}", 0.0, rolled_back, roll_back),
        ]


@dataclass
class PhaseReport:
    """What the callers saw in one phase. `settled` calls started after the phase's change returned and
    ended before the next one was issued."""

    name: str
    expected_share: float
    change_seconds: float  # how long the traffic change took to return (0 for the first phase)
    calls: list[Call]
    settled: list[Call]
    model_id: str
    stable_version: str
    new_version: str

    @property
    def requests(self) -> int:
        return len(self.calls)

    @property
    def failures(self) -> list[Call]:
        return [c for c in self.calls if c.error]

    @property
    def served(self) -> list[Call]:
        return [c for c in self.settled if not c.error]

    @property
    def persons(self) -> int:
        return len({c.person for c in self.served})

    @property
    def new_share(self) -> float:
        """The share of distinct persons (of settled calls) served by the new version."""
        persons = {c.person for c in self.served}
        on_new = {c.person for c in self.served if c.version == self.new_version}
        return len(on_new) / len(persons) if persons else float("nan")

    @property
    def split_persons(self) -> int:
        """Persons served by both versions among settled calls: a person's arm must be stable."""
        versions: dict[str, set[str]] = {}
        for c in self.served:
            versions.setdefault(c.person, set()).add(c.version)
        return sum(1 for v in versions.values() if len(v) > 1)

    @property
    def misrouted(self) -> list[Call]:
        """Settled calls served by another version than the traffic gives their person: the new version
        for a person whose canary bucket is under the phase's share, the stable one otherwise."""
        share = round(self.expected_share * BASIS_POINTS)
        return [
            c
            for c in self.served
            if c.version
            != (self.new_version if canary_bucket(self.model_id, c.person) < share else self.stable_version)
        ]

    def latency_ms(self, fraction: float) -> float:
        latencies = sorted((c.ended - c.started) * 1000 for c in self.calls)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, round(fraction * (len(latencies) - 1)))]

    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.failures:
            counts[c.error] = counts.get(c.error, 0) + 1
        return counts


@dataclass
class _Callers:
    address: str
    metadata: Metadata
    plan: RolloutPlan
    stop: threading.Event = field(default_factory=threading.Event)
    calls: list[list[Call]] = field(default_factory=list)

    def persons_since(self, since: float) -> int:
        """Distinct persons of the calls that started after `since` and have ended (read while calling:
        each caller only appends to its list)."""
        return len({c.person for mine in self.calls for c in mine[:] if c.started >= since and not c.error})

    def run(self, index: int) -> None:
        mine: list[Call] = []
        self.calls[index] = mine
        rng = random.Random(index)
        plan = self.plan
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            while not self.stop.is_set():
                person = _person(rng.randrange(plan.persons))
                request = pb.DecideRequest(
                    person=event_pb2.PersonRef(person_id=person),
                    channel=plan.channel,
                    placement=plan.placement,
                )
                started = time.perf_counter()
                try:
                    response = stub.Decide(request, metadata=self.metadata, timeout=plan.timeout_s)
                except grpc.RpcError as error:
                    code = error.code()
                    details = error.details()
                    mine.append(Call(started, time.perf_counter(), person, error=f"{code.name}: {details}"))
                else:
                    mine.append(Call(started, time.perf_counter(), person, version=response.model_version))


def run_rollout(
    address: str, metadata: Metadata, plan: RolloutPlan, log: Callable[[str], object] = lambda _: None
) -> list[PhaseReport]:
    """Deploy the stable version in full, then walk the plan's phases under load; one report per phase."""
    phases = plan.phases(metadata)
    with grpc.insecure_channel(address) as channel:
        admin = pb_grpc.DecisionServiceStub(channel)
        admin.DeployModel(
            pb.DeployModelRequest(
                name=f"models/{plan.model_id}", version=plan.stable_version, mode=pb.DEPLOY_MODE_FULL
            ),
            metadata=metadata,
            timeout=plan.timeout_s,
        )
        callers = _Callers(address, metadata, plan, calls=[[] for _ in range(plan.callers)])
        threads = [
            threading.Thread(target=callers.run, args=(i,), name=f"rollout-caller-{i}", daemon=True)
            for i in range(plan.callers)
        ]
        # (change issued, change returned) per phase, on the callers' clock
        bounds: list[tuple[float, float]] = []
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        try:
            for phase in phases:
                issued = time.perf_counter()
                if phase.change is not None:
                    phase.change(admin)
                returned = time.perf_counter()
                bounds.append((issued, returned))
                log(
                    f"{returned - began:6.1f}s {phase.name} (change took {(returned - issued) * 1000:.0f} ms)"
                )
                time.sleep(phase.seconds)
                while (
                    time.perf_counter() - returned < phase.max_seconds
                    and callers.persons_since(returned) < phase.min_persons
                ):
                    time.sleep(0.5)
        finally:
            callers.stop.set()
            for thread in threads:
                thread.join(timeout=plan.timeout_s + 5)
    calls = sorted((c for mine in callers.calls for c in mine), key=lambda c: c.started)
    return _reports(plan, phases, bounds, calls)


def pool_share(plan: RolloutPlan) -> float:
    """The share of the whole person pool in the canary's buckets: what the canary would serve over every
    person (the callers' sample of the pool deviates from it by chance)."""
    share = plan.canary_percent * BASIS_POINTS // 100
    persons = (_person(i) for i in range(plan.persons))
    return sum(canary_bucket(plan.model_id, p) < share for p in persons) / plan.persons


def _person(index: int) -> str:
    return f"rollout-person-{index}"


def _reports(
    plan: RolloutPlan,
    phases: Sequence[PhasePlan],
    bounds: Sequence[tuple[float, float]],
    calls: Sequence[Call],
) -> list[PhaseReport]:
    reports = []
    for i, (phase, (issued, returned)) in enumerate(zip(phases, bounds, strict=True)):
        # The first phase owns the load's start; each phase ends where the next change is issued.
        start = float("-inf") if i == 0 else issued
        end = bounds[i + 1][0] if i + 1 < len(bounds) else float("inf")
        mine = [c for c in calls if start <= c.started < end]
        # A call that overlaps a change may be routed by the traffic before or after it, whichever held
        # when the server took it: only calls wholly between two changes measure one traffic.
        settled = [c for c in mine if c.started >= returned and c.ended <= end]
        reports.append(
            PhaseReport(
                phase.name,
                phase.expected_share,
                returned - issued,
                mine,
                settled,
                plan.model_id,
                plan.stable_version,
                plan.new_version,
            )
        )
    return reports


def phase_table(reports: Sequence[PhaseReport]) -> list[str]:
    """The per-phase figures as text lines (requests, failures, the new version's share of persons, the
    target, settled calls on the wrong version, latency p50/p99/max in ms, how long the change took)."""
    head = (
        f"{'phase':<24} {'requests':>8} {'failed':>6} {'persons':>7} {'new share':>9} {'target':>6} "
        f"{'misrouted':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'change ms':>9}"
    )
    lines = [head]
    for r in reports:
        lines.append(
            f"{r.name:<24} {r.requests:>8} {len(r.failures):>6} {r.persons:>7} {r.new_share * 100:>8.1f}% "
            f"{r.expected_share * 100:>5.0f}% {len(r.misrouted):>9} {r.latency_ms(0.5):>7.1f} "
            f"{r.latency_ms(0.99):>7.1f} {r.latency_ms(1.0):>7.1f} {r.change_seconds * 1000:>9.0f}"
        )
        for error, count in r.errors().items():
            lines.append(f"    {count} x {error}")
    return lines
