"""Decide and the holdout RPCs over real sockets: a decision server wired as in production — each test's
tenant pushes and deploys a package `wayline_ml` wrote (UploadModelVersion, DeployModel), features come
from the online feature service and journeys, facts from the suite's real journeys (segment memberships,
lifecycle stages) and identity (identifier resolution, reachability) servers, traces go through the real
ingest and are read back with GetDecision; validation and NO_MODEL_DEPLOYED as the contract states them.
The contact ledger's rules against a real orchestrator: test_decide_contacts.py."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from tests.conftest import INTERNAL_TOKEN
from tests.decision.lifecycle_calls import deploy, push
from tests.decision.ml_package import ml_package
from tests.decision.wired import start_wired_decision
from tests.journeys.conftest import Journeys
from tests.journeys.segments_support import count, event, wait_ready
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2, decision_pb2, holdout_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import lifecycle_stage_pb2

WEB = event_pb2.CHANNEL_WEB


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ml_package(tmp_path_factory.mktemp("offers") / "p", model_id="offers", version="1")


@pytest.fixture(scope="module")
def decision(
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    server = start_wired_decision(
        tmp_path_factory.mktemp("decide"),
        journeys=journeys_server,
        identity=identity_server,
        ingest=ingest_server,
        catalogue_cache_seconds=0,
        holdout_cache_seconds=0,
        generous_budgets=True,
    )
    yield server
    server.stop(0)


class Client:
    def __init__(self, channel: grpc.Channel, tenant: str) -> None:
        self.stub = pb_grpc.DecisionServiceStub(channel)
        self.tenant = tenant
        self.metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))

    def decide(self, **fields: object) -> pb.DecideResponse:
        request = pb.DecideRequest(channel=WEB, placement="home_hero", **fields)  # type: ignore[arg-type]
        response: pb.DecideResponse = self.stub.Decide(request, metadata=self.metadata, timeout=10)
        return response

    def create(self, action_id: str, **fields: object) -> None:
        action = action_pb2.Action(channel=WEB, **fields)  # type: ignore[arg-type]
        self.stub.CreateAction(
            pb.CreateActionRequest(action_id=action_id, action=action), metadata=self.metadata, timeout=10
        )

    def trace(self, decision_id: str) -> decision_pb2.Decision:
        request = pb.GetDecisionRequest(decision_id=decision_id)
        decision: decision_pb2.Decision = self.stub.GetDecision(
            request, metadata=self.metadata, timeout=10
        ).decision
        return decision


@pytest.fixture
def client(decision: Server, package: Path) -> Iterator[Client]:
    """A tenant of the test's own with the package pushed and deployed (full traffic) on it."""
    with grpc.insecure_channel(decision.address) as channel:
        client = Client(channel, f"decide-{uuid.uuid4().hex[:8]}")
        push(channel, package, client.metadata)
        deploy(channel, "offers", "1", auth=client.metadata)
        yield client


def test_decide_reads_segments_and_lifecycle_from_journeys(client: Client, journeys_server: Server) -> None:
    person = f"person-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(journeys_server.address) as channel:
        journeys = Journeys(channel, client.tenant)
        journeys.write(event(person, "Purchased", datetime.now(UTC) - timedelta(hours=1)))
        wait_ready(journeys, journeys.create_segment(count("Purchased"), "buyers").name)
        wait_ready(journeys, journeys.create_segment(count("Cancelled"), "churned").name)
        stages: journeys_pb.GetLifecycleStagesResponse = journeys.stub.GetLifecycleStages(
            journeys_pb.GetLifecycleStagesRequest(persons=[event_pb2.PersonRef(person_id=person)]),
            metadata=journeys.metadata,
            timeout=30,
        )
    stage = stages.persons[0].stage
    other = (
        lifecycle_stage_pb2.LIFECYCLE_STAGE_ADVOCACY
        if stage != 6
        else lifecycle_stage_pb2.LIFECYCLE_STAGE_AWARENESS
    )
    client.create(
        "discount_10", eligibility=action_pb2.ActionEligibility(required_segments=["segments/buyers"])
    )
    client.create(
        "call_back", eligibility=action_pb2.ActionEligibility(excluded_segments=["segments/buyers"])
    )
    client.create("push_reminder", eligibility=action_pb2.ActionEligibility(lifecycle_stages=[stage]))
    client.create("email_newsletter", eligibility=action_pb2.ActionEligibility(lifecycle_stages=[other]))
    response = client.decide(person=event_pb2.PersonRef(person_id=person), max_actions=4)
    described = [c.filter_description for c in client.trace(response.decision_id).candidates]
    assert sorted(a.action_id for a in response.actions) == ["discount_10", "push_reminder"], described
    assert sorted(a.action_id for a in response.actions) == ["discount_10", "push_reminder"]
    trace = client.trace(response.decision_id)
    filtered = {
        c.candidate.action_id: (c.filter_reason, c.filtered_by)
        for c in trace.candidates
        if c.outcome == decision_pb2.CANDIDATE_OUTCOME_FILTERED
    }
    assert filtered == {
        "call_back": (decision_pb2.FILTER_REASON_SEGMENT_EXCLUDED, "segments/buyers"),
        "email_newsletter": (decision_pb2.FILTER_REASON_LIFECYCLE_STAGE, "eligibility.lifecycle_stages"),
    }
    # A stranger to journeys belongs to no segment: the required one removes the offer, not the exclusion.
    stranger = client.decide(
        person=event_pb2.PersonRef(person_id=f"nobody-{uuid.uuid4().hex[:6]}"), max_actions=4
    )
    assert "discount_10" not in [a.action_id for a in stranger.actions]
    assert "call_back" in [a.action_id for a in stranger.actions]


def test_decide_by_identifier_resolves_through_identity(client: Client, identity_server: Server) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with grpc.insecure_channel(identity_server.address) as channel:
        now = Timestamp()
        now.GetCurrentTime()
        resolved = identity_grpc.IdentityServiceStub(channel).ResolveIdentities(
            identity_pb.ResolveIdentitiesRequest(
                inputs=[
                    identity_pb.IdentityResolutionInput(
                        event_id=str(uuid.uuid4()),
                        timestamp=now,
                        event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                        identifiers=[event_pb2.Identifier(type="email", value=email)],
                    )
                ]
            ),
            metadata=client.metadata,
            timeout=10,
        )
    person_id = resolved.resolutions[0].person_id
    reachable = action_pb2.ActionEligibility(required_reachable_channel=event_pb2.CHANNEL_EMAIL)
    client.create("discount_10", eligibility=reachable)
    client.create(
        "call_back",
        eligibility=action_pb2.ActionEligibility(required_reachable_channel=event_pb2.CHANNEL_SMS),
    )
    by_email = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value=email))
    response = client.decide(person=by_email, max_actions=4)
    assert response.person_id == person_id
    # Nothing observed for them online and the spec just registered: journeys answers (within the budget).
    assert response.feature_source == action_pb2.FEATURE_SOURCE_JOURNEYS
    assert [a.action_id for a in response.actions] == ["discount_10"]
    sms = next(
        c for c in client.trace(response.decision_id).candidates if c.candidate.action_id == "call_back"
    )
    assert (sms.filter_reason, sms.filter_description) == (
        decision_pb2.FILTER_REASON_NOT_REACHABLE,
        "the person has no phone to reach them on sms",
    )
    # By person id, reachability reads the profile from identity.
    by_id = client.decide(person=event_pb2.PersonRef(person_id=person_id), max_actions=4)
    assert [a.action_id for a in by_id.actions] == ["discount_10"]
    stranger = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value="nobody@example.com"))
    unknown = client.decide(person=stranger, max_actions=4)
    assert unknown.person_id == ""
    assert unknown.feature_source == action_pb2.FEATURE_SOURCE_DEFAULTS
    assert [a.action_id for a in unknown.actions] == ["discount_10"]  # the email named reaches them


def test_decide_refuses_malformed_requests_and_answers_no_model_deployed(
    client: Client, decision_server: Server
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.decide(max_actions=60, candidates=[action_pb2.CandidateAction(action_id="a")] * 2)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(refused.value) == "DECIDE_REQUEST_INVALID"
    assert list(violations(refused.value)) == ["person", "max_actions", "candidates[1].action_id"]
    # The suite's decision server: nothing deployed for this tenant there.
    with (
        grpc.insecure_channel(decision_server.address) as channel,
        pytest.raises(grpc.RpcError) as undeployed,
    ):
        Client(channel, client.tenant).decide(person=event_pb2.PersonRef(person_id="p"))
    assert undeployed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(undeployed.value) == "NO_MODEL_DEPLOYED"


def test_holdout_config_rpcs_get_update_with_etags_and_violations(client: Client) -> None:
    empty = client.stub.GetHoldoutConfig(pb.GetHoldoutConfigRequest(), metadata=client.metadata, timeout=10)
    assert (list(empty.holdout_config.groups), empty.holdout_config.etag) == ([], "0")
    group = holdout_pb2.HoldoutGroup(
        group_id="chance",
        enabled=True,
        percent=50,
        salt="s",
        treatment=holdout_pb2.HOLDOUT_TREATMENT_RANDOM_ACTION,
    )
    update = pb.UpdateHoldoutConfigRequest(
        holdout_config=holdout_pb2.HoldoutConfig(groups=[group], etag="0"),
        update_mask=FieldMask(paths=["groups"]),
    )
    stored = client.stub.UpdateHoldoutConfig(update, metadata=client.metadata, timeout=10).holdout_config
    assert (list(stored.groups), stored.etag) == ([group], "1")
    assert stored.HasField("update_time")
    got = client.stub.GetHoldoutConfig(pb.GetHoldoutConfigRequest(), metadata=client.metadata, timeout=10)
    assert got.holdout_config == stored
    with pytest.raises(grpc.RpcError) as stale:
        client.stub.UpdateHoldoutConfig(update, metadata=client.metadata, timeout=10)
    assert (stale.value.code(), reason(stale.value)) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    bad = pb.UpdateHoldoutConfigRequest(
        holdout_config=holdout_pb2.HoldoutConfig(
            groups=[group, holdout_pb2.HoldoutGroup(group_id="chance", percent=60)]
        )
    )
    with pytest.raises(grpc.RpcError) as invalid:
        client.stub.UpdateHoldoutConfig(bad, metadata=client.metadata, timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(invalid.value)) == [
        "holdout_config.groups[1].group_id",
        "holdout_config.groups[1].percent",
        "holdout_config.groups[1].salt",
    ]
    # Decisions follow the config: half of persons get a random action, traced with its probability.
    client.create("discount_10")
    client.create("call_back")
    held = [client.decide(person=event_pb2.PersonRef(person_id=f"p{i}")) for i in range(40)]
    traces = [client.trace(r.decision_id) for r in held]
    random_ones = [t for t in traces if t.holdout]
    assert 5 < len(random_ones) < 35
    assert all(t.holdout_group_id == "chance" and t.chosen_probability == 0.5 for t in random_ones)
    assert all(r.holdout == t.holdout and len(r.actions) == 1 for r, t in zip(held, traces, strict=True))


def test_decide_explains_the_chosen_action_with_the_packages_own_treeshap(client: Client) -> None:
    """The deployed version explains itself (TreeSHAP over its response graph with the package's covers):
    base value + contributions + the rest = the margin, and the margin is the chosen action's propensity."""
    for action_id in ("email_newsletter", "discount_10", "call_back", "push_reminder"):
        client.create(action_id)
    response = client.decide(person=event_pb2.PersonRef(person_id="explained"), max_actions=4, explain=True)
    explanation = response.explanation
    chosen = response.actions[0]
    assert explanation.action_id == chosen.action_id
    total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
    assert total + explanation.other_contribution == pytest.approx(explanation.margin, abs=1e-5)
    assert 1 / (1 + math.exp(-explanation.margin)) == pytest.approx(chosen.propensity, abs=1e-5)
    assert "action" in [c.feature for c in explanation.contributions]
    # Unasked, no explanation is computed.
    plain = client.decide(person=event_pb2.PersonRef(person_id="explained"), max_actions=4)
    assert not plain.HasField("explanation")


def test_get_decision_serves_the_trace_the_moment_decide_returns(client: Client) -> None:
    # The trace is built off Decide's thread (the sink's, or the first reader's): GetDecision must still
    # find the whole story of a decision just made, and tell the same one as the response.
    for action_id in ("discount_10", "call_back", "push_reminder"):
        client.create(action_id, value=5.0)
    person = event_pb2.PersonRef(person_id=f"p-{uuid.uuid4().hex[:8]}")
    context = Struct()
    context.update({"page": "/home"})
    responses = [client.decide(person=person, max_actions=2, context=context) for _ in range(5)]
    for response in responses:
        trace = client.trace(response.decision_id)
        assert (trace.decision_id, trace.person_id) == (response.decision_id, response.person_id)
        assert (trace.model, trace.model_version) == (response.model, response.model_version)
        assert trace.feature_source == response.feature_source
        assert trace.decide_time == response.decide_time
        assert trace.chosen_action_id == response.actions[0].action_id
        assert trace.context == context
        assert len(trace.features) > 0
        outcomes = {c.candidate.action_id: (c.outcome, c.rank) for c in trace.candidates}
        assert len(outcomes) == 3
        for position, action in enumerate(response.actions, 1):
            expected = (
                decision_pb2.CANDIDATE_OUTCOME_CHOSEN
                if position == 1
                else decision_pb2.CANDIDATE_OUTCOME_RETURNED
            )
            assert outcomes[action.action_id] == (expected, position)
            factors = next(c.factors for c in trace.candidates if c.candidate.action_id == action.action_id)
            assert (factors.priority, factors.propensity) == (action.score, action.propensity)


def test_named_candidates_are_filtered_by_the_catalogues_window_placement_state_and_the_model(
    client: Client,
) -> None:
    """The rules that need no outside fact, over real sockets: a request naming its candidates still gets
    the catalogue's validity window, placements and archived state applied, and an action the model does
    not score is removed, each with its reason in the trace."""
    past = Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    client.create("discount_10")
    client.create("call_back", end_time=past)
    client.create("push_reminder", placements=["footer"])
    client.create("email_newsletter")
    client.stub.ArchiveAction(
        pb.ArchiveActionRequest(name="actions/email_newsletter"), metadata=client.metadata, timeout=10
    )
    named = ["discount_10", "call_back", "push_reminder", "email_newsletter", "not_in_the_model"]
    response = client.decide(
        person=event_pb2.PersonRef(person_id=f"p-{uuid.uuid4().hex[:8]}"),
        max_actions=5,
        candidates=[action_pb2.CandidateAction(action_id=a) for a in named],
    )
    assert [a.action_id for a in response.actions] == ["discount_10"]
    filtered = {
        c.candidate.action_id: c.filter_reason
        for c in client.trace(response.decision_id).candidates
        if c.outcome == decision_pb2.CANDIDATE_OUTCOME_FILTERED
    }
    assert filtered == {
        "call_back": decision_pb2.FILTER_REASON_VALIDITY_WINDOW,
        "push_reminder": decision_pb2.FILTER_REASON_PLACEMENT,
        "email_newsletter": decision_pb2.FILTER_REASON_ACTION_ARCHIVED,
        "not_in_the_model": decision_pb2.FILTER_REASON_UNKNOWN_ACTION,
    }
