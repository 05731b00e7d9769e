"""The model server's routing over real registered packages and a real traffic table: the canary split by
a stable hash of the person, the rule that picks one of several models serving a channel and placement, the
router's errors, the listeners, and routing that never fails while versions swap in other threads."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.decision.serving.lifecycle_setup import Lifecycle, lifecycle_over, register_ml, register_serving
from wayline.common.sql import open_database
from wayline.event.v1 import event_pb2
from wayline_decision.errors import ModelNotFound, NoModelDeployed
from wayline_decision.serving.loaded import ServingModel
from wayline_decision.serving.route import Arm
from wayline_decision.serving.traffic import DeployMode, Traffic, TrafficChange

TENANT = "acme"
WEB, EMAIL, SMS = event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_EMAIL, event_pb2.CHANNEL_SMS


@pytest.fixture
def setup(tmp_path: Path) -> Lifecycle:
    return lifecycle_over(tmp_path / "registry", open_database(None, tmp_path / "decision.db"))


def test_route_a_canary_takes_its_share_of_persons_stably_and_per_model(
    setup: Lifecycle, tmp_path: Path
) -> None:
    for model_id in ("offers", "churn"):
        for version in ("1", "2"):
            register_ml(setup.registry, TENANT, tmp_path, model_id, version)
        setup.lifecycle.deploy(TENANT, model_id, "1", DeployMode.FULL, 0)
        setup.lifecycle.deploy(TENANT, model_id, "2", DeployMode.CANARY, 10)
    persons = [f"person-{i}" for i in range(20_000)]
    route = setup.server.route
    arms = {p: route(TENANT, "offers", WEB, "home", p).arm for p in persons}
    share = Counter(arms.values())[Arm.CANARY] / len(persons)
    assert 0.08 <= share <= 0.12, share
    canary = route(TENANT, "offers", WEB, "home", next(p for p in persons if arms[p] is Arm.CANARY))
    assert (canary.model.version, canary.arm) == ("2", Arm.CANARY)
    # Stable: the same person, the same arm, call after call.
    assert all(route(TENANT, "offers", WEB, "home", p).arm is arms[p] for p in persons[:2000])
    # Independent per model: about 10 % of one model's canary persons are in the other's, not all of them.
    in_both = sum(
        1 for p in persons if arms[p] is Arm.CANARY and route(TENANT, "churn", WEB, "", p).arm is Arm.CANARY
    )
    assert in_both / max(1, Counter(arms.values())[Arm.CANARY]) < 0.2
    # Growing the canary keeps those already in it (buckets below 10 % are below 50 %).
    setup.lifecycle.set_traffic(TENANT, "offers", TrafficChange("1", "2", 50))
    assert all(
        route(TENANT, "offers", WEB, "home", p).arm is Arm.CANARY for p in persons if arms[p] is Arm.CANARY
    )
    share = sum(route(TENANT, "offers", WEB, "home", p).arm is Arm.CANARY for p in persons) / len(persons)
    assert 0.48 <= share <= 0.52, share


def test_route_the_most_specific_model_serves_a_channel_and_placement(
    setup: Lifecycle, tmp_path: Path
) -> None:
    models = {
        "anything": ((), ()),
        "web": ((WEB,), ()),
        "a-web": ((WEB,), ()),  # as specific as `web`: the smaller id wins
        "hero": ((), ("home_hero",)),
        "web-hero": ((WEB,), ("home_hero",)),
        "sms-only": ((SMS,), ()),
    }
    for model_id, (channels, placements) in models.items():
        register_serving(setup.registry, TENANT, tmp_path, model_id, channels, placements)
        if model_id != "sms-only":  # registered, never deployed
            setup.lifecycle.deploy(TENANT, model_id, "1", DeployMode.FULL, 0)

    def serving(channel: int, placement: str) -> str:
        return setup.server.route(TENANT, None, channel, placement, "p-1").model.model_id

    assert serving(WEB, "home_hero") == "web-hero"  # placement and channel named
    assert serving(EMAIL, "home_hero") == "hero"  # placement named beats channel named
    assert serving(WEB, "cart") == "a-web"  # channel named; tie broken by model id
    assert serving(EMAIL, "cart") == "anything"
    assert serving(SMS, "cart") == "anything"  # sms-only is not deployed
    with pytest.raises(NoModelDeployed):
        setup.server.route("globex", None, WEB, "home_hero", "p-1")
    with pytest.raises(NoModelDeployed) as not_deployed:
        setup.server.route(TENANT, "sms-only", SMS, "", "p-1")
    assert not_deployed.value.reason == "NO_MODEL_DEPLOYED"
    with pytest.raises(ModelNotFound):
        setup.server.route(TENANT, "nope", WEB, "", "p-1")
    with pytest.raises(ModelNotFound):
        setup.server.route(TENANT, "Not An Id", WEB, "", "p-1")
    # Named, a model serves whatever the channel.
    assert setup.server.route(TENANT, "web", SMS, "x", "p-1").model.model_id == "web"


class _Recorder:
    def __init__(self, setup: Lifecycle) -> None:
        self.setup = setup
        self.seen: list[tuple[str, bool]] = []

    def loaded(self, model: ServingModel) -> None:
        # Told before the version takes traffic: the router does not serve it yet.
        deployment = self.setup.server.deployment(model.tenant, model.model_id)
        serving = deployment is not None and any(m is model for m in deployment.models())
        self.seen.append((model.version, serving))


def test_listeners_are_told_of_a_version_before_it_takes_traffic(tmp_path: Path) -> None:
    db = open_database(None, tmp_path / "decision.db")
    setup = lifecycle_over(tmp_path / "registry", db)
    recorder = _Recorder(setup)
    setup.loader.add_listener(recorder)
    for version in ("1", "2"):
        register_ml(setup.registry, TENANT, tmp_path, "offers", version)
    setup.lifecycle.deploy(TENANT, "offers", "1", DeployMode.FULL, 0)
    setup.lifecycle.deploy(TENANT, "offers", "2", DeployMode.SHADOW, 0)
    assert recorder.seen == [("1", False), ("2", False)]
    route = setup.server.route(TENANT, None, WEB, "", "p")
    assert (route.model.version, route.shadow.version if route.shadow else None) == ("1", "2")


@pytest.mark.timeout(180)
def test_route_never_fails_while_versions_swap_in_other_threads(setup: Lifecycle, tmp_path: Path) -> None:
    for version in ("1", "2", "3"):
        register_ml(setup.registry, TENANT, tmp_path, "offers", version)
    lifecycle = setup.lifecycle
    lifecycle.deploy(TENANT, "offers", "1", DeployMode.FULL, 0)
    stop = threading.Event()
    failures: list[BaseException] = []
    answered: Counter[str] = Counter()
    timings: list[float] = []

    def decide(worker: int) -> None:
        count = 0
        local: Counter[str] = Counter()
        while not stop.is_set():
            person = f"p-{worker}-{count}"
            started = time.perf_counter()
            try:
                route = setup.server.route(TENANT, None, WEB, "home", person)
                route.model.score(route.model.encode([None] * len(route.model.feature_names)), [0])
            except BaseException as error:  # noqa: BLE001 - any failure fails the test
                failures.append(error)
                return
            if worker == 0:
                timings.append(time.perf_counter() - started)
            local[route.model.version] += 1
            count += 1
        answered.update(local)

    threads = [threading.Thread(target=decide, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    steps: list[Callable[[], Traffic]] = [
        lambda: lifecycle.deploy(TENANT, "offers", "2", DeployMode.CANARY, 10),
        lambda: lifecycle.set_traffic(TENANT, "offers", TrafficChange("1", "2", 60, "3")),
        lambda: lifecycle.deploy(TENANT, "offers", "2", DeployMode.FULL, 0),
        lambda: lifecycle.rollback(TENANT, "offers", ""),
        lambda: lifecycle.deploy(TENANT, "offers", "3", DeployMode.FULL, 0),
        lambda: lifecycle.rollback(TENANT, "offers", "2"),
    ]
    for step in steps:
        step()
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert set(answered) == {"1", "2", "3"}
    assert sum(answered.values()) > 1000
    assert setup.server.route(TENANT, None, WEB, "home", "p").model.version == "2"
    # Versions no longer referenced are dropped; the previous stable version (3) stays warm for a rollback.
    deployment = setup.server.deployment(TENANT, "offers")
    assert deployment is not None
    assert [m.version for m in deployment.held()] == ["2", "3"]
    assert setup.lifecycle.version_state(TENANT, "offers", "1")[0].value == "registered"
    assert setup.lifecycle.version_state(TENANT, "offers", "2")[0].value == "loaded"


def test_route_costs_microseconds(setup: Lifecycle, tmp_path: Path) -> None:
    for version in ("1", "2"):
        register_ml(setup.registry, TENANT, tmp_path, "offers", version)
    setup.lifecycle.deploy(TENANT, "offers", "1", DeployMode.FULL, 0)
    setup.lifecycle.deploy(TENANT, "offers", "2", DeployMode.CANARY, 10)
    route = setup.server.route
    persons = [f"person-{i}" for i in range(50_000)]
    for named in (None, "offers"):
        samples = []
        for chunk in range(50):
            batch = persons[chunk * 1000 : (chunk + 1) * 1000]
            started = time.perf_counter()
            for person in batch:
                route(TENANT, named, WEB, "home", person)
            samples.append((time.perf_counter() - started) / len(batch) * 1e6)
        median = statistics.median(samples)
        print(f"route(model={named}) median {median:.2f} µs per call")
        assert median < 50, median
