"""The canary judge at work over real services: a decision server wired to the suite's identity, ingest and
journeys, each test's tenant with versions 1 and 2 of a package wayline_ml wrote, version 2 canaried on half
the persons with a judgement policy. Decisions are made with Decide and converted with Feedback
(CONVERSION), so the judge's counts travel the production path (trace events through ingest, indexed by
journeys, counted by CountDecisionOutcomes). A clearly better canary is promoted, a clearly worse one rolled
back, one with too little evidence left alone with its counts shown, and one whose policy is disabled never
acted on; GetModel shows each evaluation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from tests.decision.lifecycle_calls import deploy, get_model, push
from tests.decision.ml_package import ml_package
from tests.decision.traces.conftest import DecisionUnderTest, metadata, start_decision
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2, decision_pb2, model_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc

ACTION = "discount_10"  # an action the package scores
JUDGE_SECONDS = 0.5
WAIT_SECONDS = 120.0  # traces and feedback reach journeys through ingest; the shared box is slow
# Each test decides for 40 persons or more and waits for journeys to index them; the suite's 120 s per test
# does not cover that on a loaded box.
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("judged")
    return (
        ml_package(root / "v1", model_id="offers", version="1"),
        ml_package(root / "v2", model_id="offers", version="2"),
    )


@pytest.fixture(scope="module")
def judged(
    identity_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DecisionUnderTest]:
    started = start_decision(
        tmp_path_factory.mktemp("decision-judge"),
        identity_server.address,
        ingest_server.address,
        journeys_server.address,
        canary_judge_seconds=JUDGE_SECONDS,
        # The production feature budgets: a person journeys is slow to answer for is scored with the spec's
        # defaults, which the judge does not mind (it counts decisions and conversions, whatever the scores).
    )
    yield started
    started.stop()


@pytest.fixture
def tenant() -> str:
    return f"judge-{uuid.uuid4().hex[:8]}"


def canary(
    decision: DecisionUnderTest,
    tenant: str,
    packages: tuple[Path, Path],
    judgement: model_pb2.CanaryJudgement,
) -> model_pb2.Model:
    """Versions 1 (stable) and 2 (canary on half the persons, judged by `judgement`) of the tenant's model."""
    auth = metadata(tenant)
    for package in packages:
        push(decision.channel, package, auth)
    deploy(decision.channel, "offers", "1", auth=auth)
    request = pb.DeployModelRequest(
        name="models/offers",
        version="2",
        mode=pb.DEPLOY_MODE_CANARY,
        canary_percent=50,
        judgement=judgement,
    )
    model: model_pb2.Model = decision.stub.DeployModel(request, metadata=auth, timeout=60).model
    return model


def persons(identity_server: Server, tenant: str, count: int) -> list[str]:
    """`count` persons known to identity (the traces of decisions for them are written on their behalf)."""
    request = identity_pb.ResolveIdentitiesRequest()
    for _ in range(count):
        entry = request.inputs.add(event_id=str(uuid.uuid4()), event_type=event_pb2.EVENT_TYPE_IDENTIFY)
        entry.identifiers.add(type="user_id", value=f"u-{uuid.uuid4().hex[:12]}")
        entry.timestamp.GetCurrentTime()
    with grpc.insecure_channel(identity_server.address) as channel:
        response = identity_grpc.IdentityServiceStub(channel).ResolveIdentities(
            request, metadata=metadata(tenant), timeout=30
        )
    return [r.person_id for r in response.resolutions]


def decide_both_arms(
    decision: DecisionUnderTest, identity_server: Server, tenant: str, each: int
) -> dict[str, list[str]]:
    """Decide for new persons until each version served at least `each` of them; version → decision ids."""
    served: dict[str, list[str]] = {"1": [], "2": []}

    def decide(person_id: str) -> pb.DecideResponse:
        request = pb.DecideRequest(
            person=event_pb2.PersonRef(person_id=person_id),
            channel=event_pb2.CHANNEL_WEB,
            placement="home_hero",
            candidates=[action_pb2.CandidateAction(action_id=ACTION)],
        )
        response: pb.DecideResponse = decision.stub.Decide(request, metadata=metadata(tenant), timeout=30)
        return response

    with ThreadPoolExecutor(4) as pool:
        while min(len(ids) for ids in served.values()) < each:
            for response in pool.map(decide, persons(identity_server, tenant, each)):
                assert [a.action_id for a in response.actions] == [ACTION]
                served[response.model_version].append(response.decision_id)
    return served


def convert(decision: DecisionUnderTest, tenant: str, decision_ids: list[str]) -> None:
    def feedback(decision_id: str) -> None:
        request = pb.FeedbackRequest(
            decision_id=decision_id, action_id=ACTION, outcome=decision_pb2.FEEDBACK_OUTCOME_CONVERSION
        )
        decision.stub.Feedback(request, metadata=metadata(tenant), timeout=30)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(feedback, decision_ids))


def wait_model(
    decision: DecisionUnderTest, tenant: str, done: Callable[[model_pb2.Model], bool], what: str
) -> model_pb2.Model:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        model = get_model(decision.channel, "offers", metadata(tenant))
        if done(model):
            return model
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT_SECONDS} s; the model is {model}")
        time.sleep(0.2)


def counted(journeys_server: Server, tenant: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(version, arm name) → (decisions, converted decisions), as journeys counts them."""
    with grpc.insecure_channel(journeys_server.address) as channel:
        response = journeys_grpc.JourneyServiceStub(channel).CountDecisionOutcomes(
            journeys_pb.CountDecisionOutcomesRequest(model="models/offers"),
            metadata=metadata(tenant),
            timeout=30,
        )
    return {(c.model_version, c.arm): (c.decisions, c.converted_decisions) for c in response.counts}


def judgement(min_decisions: int, *, enabled: bool = True) -> model_pb2.CanaryJudgement:
    return model_pb2.CanaryJudgement(
        enabled=enabled, margin=0.05, min_decisions=min_decisions, confidence=0.95
    )


def test_a_clearly_better_canary_is_promoted(
    judged: DecisionUnderTest, identity_server: Server, tenant: str, packages: tuple[Path, Path]
) -> None:
    deployed = canary(judged, tenant, packages, judgement(20))
    assert deployed.traffic.judgement == judgement(20)
    served = decide_both_arms(judged, identity_server, tenant, 20)
    convert(judged, tenant, served["2"])  # every canary decision converts, no stable one does
    model = wait_model(
        judged, tenant, lambda m: m.traffic.stable_version == "2", "the canary was not promoted"
    )
    assert (model.traffic.canary_version, model.traffic.canary_percent, model.previous_stable_version) == (
        "",
        0,
        "1",
    )
    assert not model.traffic.HasField("judgement")  # the run is over
    evaluation = model.canary_evaluation
    assert evaluation.verdict == model_pb2.CANARY_VERDICT_PROMOTE
    assert (evaluation.stable_version, evaluation.canary_version) == ("1", "2")  # the run's, now ended
    # The judge may act before every conversion is counted: as soon as the evidence is decisive.
    assert evaluation.canary_decisions >= 20
    assert 0 < evaluation.canary_conversions <= evaluation.canary_decisions
    assert evaluation.stable_conversions == 0
    assert evaluation.stable_decisions >= 20
    assert evaluation.difference_lower > 0.05
    assert evaluation.explanation.startswith("promote:")
    # Decisions now go to version 2 alone.
    assert set(decide_both_arms_once(judged, identity_server, tenant)) == {"2"}


def decide_both_arms_once(decision: DecisionUnderTest, identity_server: Server, tenant: str) -> list[str]:
    """The versions that served ten new persons."""
    versions = []
    for person_id in persons(identity_server, tenant, 10):
        request = pb.DecideRequest(
            person=event_pb2.PersonRef(person_id=person_id),
            channel=event_pb2.CHANNEL_WEB,
            placement="home_hero",
            candidates=[action_pb2.CandidateAction(action_id=ACTION)],
        )
        versions.append(decision.stub.Decide(request, metadata=metadata(tenant), timeout=30).model_version)
    return versions


def test_a_clearly_worse_canary_is_rolled_back(
    judged: DecisionUnderTest, identity_server: Server, tenant: str, packages: tuple[Path, Path]
) -> None:
    canary(judged, tenant, packages, judgement(20))
    served = decide_both_arms(judged, identity_server, tenant, 20)
    convert(judged, tenant, served["1"])  # every stable decision converts, no canary one does
    model = wait_model(
        judged, tenant, lambda m: not m.traffic.canary_version, "the canary was not rolled back"
    )
    assert (model.traffic.stable_version, model.previous_stable_version) == ("1", "")
    evaluation = model.canary_evaluation
    assert evaluation.verdict == model_pb2.CANARY_VERDICT_ROLL_BACK
    assert (evaluation.stable_version, evaluation.canary_version) == ("1", "2")
    assert evaluation.stable_decisions >= 20
    assert 0 < evaluation.stable_conversions <= evaluation.stable_decisions
    assert evaluation.canary_conversions == 0
    assert evaluation.canary_decisions >= 20
    assert evaluation.difference_upper < -0.05
    assert set(decide_both_arms_once(judged, identity_server, tenant)) == {"1"}


def test_too_little_evidence_leaves_the_canary_with_its_counts_shown(
    judged: DecisionUnderTest,
    identity_server: Server,
    journeys_server: Server,
    tenant: str,
    packages: tuple[Path, Path],
) -> None:
    canary(judged, tenant, packages, judgement(1000))
    served = decide_both_arms(judged, identity_server, tenant, 10)
    convert(judged, tenant, served["2"])
    expected = (len(served["1"]), 0, len(served["2"]), len(served["2"]))

    def shows_every_count(model: model_pb2.Model) -> bool:
        e = model.canary_evaluation
        return (
            e.stable_decisions,
            e.stable_conversions,
            e.canary_decisions,
            e.canary_conversions,
        ) == expected

    model = wait_model(judged, tenant, shows_every_count, "the evaluation did not show the counts")
    assert (model.traffic.stable_version, model.traffic.canary_version, model.traffic.canary_percent) == (
        "1",
        "2",
        50,
    )
    evaluation = model.canary_evaluation
    assert evaluation.verdict == model_pb2.CANARY_VERDICT_WAIT
    assert (evaluation.stable_version, evaluation.canary_version) == ("1", "2")
    assert "needs 1000 decisions" in evaluation.explanation
    assert evaluation.evaluate_time.ToMicroseconds() > model.update_time.ToMicroseconds()
    # The judge keeps looking: the evaluation is renewed, the canary stays.
    looked = evaluation.evaluate_time.ToMicroseconds()
    later = wait_model(
        judged,
        tenant,
        lambda m: m.canary_evaluation.evaluate_time.ToMicroseconds() > looked,
        "the judge did not look again",
    )
    assert later.traffic.canary_version == "2"
    assert counted(journeys_server, tenant)[("2", "MODEL_ARM_CANARY")] == (len(served["2"]), len(served["2"]))


def test_a_disabled_policy_is_never_acted_on(
    judged: DecisionUnderTest,
    identity_server: Server,
    journeys_server: Server,
    tenant: str,
    packages: tuple[Path, Path],
) -> None:
    # A judged twin with the same evidence shows when the judge would have acted.
    twin = f"{tenant}-twin"
    deployed = canary(judged, tenant, packages, judgement(20, enabled=False))
    assert not deployed.traffic.HasField("judgement")
    canary(judged, twin, packages, judgement(20))
    for who in (tenant, twin):
        convert(judged, who, decide_both_arms(judged, identity_server, who, 20)["2"])
    wait_model(judged, twin, lambda m: m.traffic.stable_version == "2", "the twin's canary was not promoted")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:  # until journeys counts as much for the untouched tenant as the twin's promotion needed
        arms = counted(journeys_server, tenant)
        canary_arm = arms.get(("2", "MODEL_ARM_CANARY"), (0, 0))
        if arms.get(("1", "MODEL_ARM_STABLE"), (0, 0))[0] >= 20 and canary_arm[1] >= 20:
            break
        assert time.monotonic() < deadline, arms
        time.sleep(0.2)
    time.sleep(6 * JUDGE_SECONDS)  # several more looks
    model = get_model(judged.channel, "offers", metadata(tenant))
    assert (model.traffic.stable_version, model.traffic.canary_version) == ("1", "2")
    assert not model.HasField("canary_evaluation")
