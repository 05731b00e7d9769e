"""The response and the trace from a real decision (features, arm, shadow scores, factors, filters), the
explanation's sum checked against XGBoost's TreeSHAP and the model's own propensity, and the request's
validation with its field paths."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from tests.decision.decide.support import ACTIONS, FEATURES, BoosterShap, ask, rig
from wayline.decision.v1 import action_pb2, decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline_decision.decide.explanations import ACTION_CONTRIBUTION
from wayline_decision.decide_converters import decide_input, decide_response, decision_trace
from wayline_decision.errors import DecideDeadlineExceeded, DecideRequestInvalid
from wayline_decision.serving.loaded import ServingModel
from wayline_decision.serving.route import Arm


def test_decide_trace_carries_every_candidate_the_features_arm_and_shadow(
    tmp_path: Path, model: ServingModel, shadow_model: ServingModel
) -> None:
    r = rig(tmp_path, model, shadow=shadow_model)
    r.router.arm = Arm.CANARY
    result = r.decider.decide("acme", ask(*ACTIONS, "unknown", max_actions=2))
    response, trace = decide_response(result), decision_trace(result)
    assert response.model == trace.model == "models/offers"
    assert response.model_version == trace.model_version == "1"
    assert response.feature_source == trace.feature_source == action_pb2.FEATURE_SOURCE_ONLINE
    assert [a.rank for a in response.actions] == [1, 2]
    assert response.actions[0].action_id == trace.chosen_action_id
    assert trace.decision_id == response.decision_id
    assert len(trace.decision_id) == 36
    assert trace.decision_id[14] == "7"
    assert trace.arm == decision_pb2.MODEL_ARM_CANARY
    assert trace.chosen_probability == 1.0
    assert dict(trace.features)["value_tier"].string_value == "high"
    assert dict(trace.features)["price_sensitivity"].number_value == pytest.approx(FEATURES[0])
    assert [c.candidate.action_id for c in trace.candidates][-1] == "unknown"
    last = trace.candidates[-1]
    assert (last.outcome, last.filter_reason, last.filtered_by) == (
        decision_pb2.CANDIDATE_OUTCOME_FILTERED,
        decision_pb2.FILTER_REASON_UNKNOWN_ACTION,
        "model.action_ids",
    )
    assert not last.HasField("factors")
    first = trace.candidates[0]
    assert first.factors.value_source == decision_pb2.VALUE_SOURCE_MODEL
    assert first.factors.priority == pytest.approx(response.actions[0].score)
    assert trace.shadow_model_version == "2"
    assert sorted(s.action_id for s in trace.shadow_scores) == sorted(ACTIONS)
    same = shadow_model.score(shadow_model.encode(FEATURES), [shadow_model.action_index["discount_10"]])
    shadow = {s.action_id: s.propensity for s in trace.shadow_scores}
    assert shadow["discount_10"] == pytest.approx(float(same.propensity[0]))


def test_decide_explanation_sums_to_the_margin_of_the_chosen_actions_propensity(
    tmp_path: Path, model: ServingModel
) -> None:
    result = rig(tmp_path, model, explainer=BoosterShap()).decider.decide("acme", ask(*ACTIONS, explain=True))
    explanation = decide_response(result).explanation
    assert explanation.action_id == result.chosen_action_id
    names = [c.feature for c in explanation.contributions]
    assert ACTION_CONTRIBUTION in names
    assert len(names) == len(model.feature_names) + 1
    assert [abs(c.contribution) for c in explanation.contributions] == sorted(
        (abs(c.contribution) for c in explanation.contributions), reverse=True
    )
    total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
    assert total + explanation.other_contribution == pytest.approx(explanation.margin, abs=1e-5)
    chosen = result.returned[0].factors
    assert chosen is not None
    assert 1 / (1 + math.exp(-explanation.margin)) == pytest.approx(chosen.propensity, abs=1e-5)
    action = next(c for c in explanation.contributions if c.feature == ACTION_CONTRIBUTION)
    assert action.value.string_value == result.chosen_action_id
    assert explanation.summary.startswith(result.chosen_action_id)


def test_decide_without_an_explainer_says_so(tmp_path: Path, model: ServingModel) -> None:
    result = rig(tmp_path, model).decider.decide("acme", ask(*ACTIONS, explain=True))
    assert result.explanation is not None
    assert result.explanation.summary == "this service has no explainer configured"


def test_decide_past_its_deadline_is_deadline_exceeded(tmp_path: Path, model: ServingModel) -> None:
    with pytest.raises(DecideDeadlineExceeded):
        rig(tmp_path, model).decider.decide("acme", ask(*ACTIONS, deadline=time.monotonic() - 1))


def _violations(request: pb.DecideRequest) -> list[str]:
    with pytest.raises(DecideRequestInvalid) as refused:
        decide_input(request, None)
    return [v.field for v in refused.value.violations]


def test_decide_request_validation_names_each_field() -> None:
    web = event_pb2.CHANNEL_WEB
    by_id = event_pb2.PersonRef(person_id="p-1")
    assert _violations(pb.DecideRequest(channel=web)) == ["person"]
    assert _violations(pb.DecideRequest(person=by_id)) == ["channel"]
    assert _violations(
        pb.DecideRequest(
            person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email")), channel=web
        )
    ) == ["person.identifier.value"]
    assert _violations(pb.DecideRequest(person=by_id, channel=web, max_actions=51)) == ["max_actions"]
    assert _violations(pb.DecideRequest(person=by_id, channel=web, max_actions=-1)) == ["max_actions"]
    assert _violations(pb.DecideRequest(person=by_id, channel=web, model="offers", placement="Home")) == [
        "placement",
        "model",
    ]
    candidates = [
        action_pb2.CandidateAction(action_id="a"),
        action_pb2.CandidateAction(action_id="a", value=-1),
        action_pb2.CandidateAction(action_id="Bad Id", lever=0, context_weight=math.inf),
        action_pb2.CandidateAction(action_id="b", required_segments=["vip"]),
    ]
    assert _violations(pb.DecideRequest(person=by_id, channel=web, candidates=candidates)) == [
        "candidates[1].value",
        "candidates[1].action_id",
        "candidates[2].action_id",
        "candidates[2].lever",
        "candidates[2].context_weight",
        "candidates[3].required_segments[0]",
    ]
    many = [action_pb2.CandidateAction(action_id=f"a{i}") for i in range(501)]
    assert _violations(pb.DecideRequest(person=by_id, channel=web, candidates=many)) == ["candidates"]
    ok = decide_input(pb.DecideRequest(person=by_id, channel=web, model="models/offers"), None)
    assert (ok.max_actions, ok.model_id, ok.channel) == (1, "offers", "CHANNEL_WEB")
