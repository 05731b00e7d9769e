"""Scoring and arbitration with a real loaded model: every factor of the priority, the value rule (request,
else catalogue, else the package's value graph), deterministic ties, max_actions and the outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decision.decide.support import ACTIONS, FEATURES, ask, ids, rig
from wayline_decision.decide.arbitration import rank
from wayline_decision.decide.model import Candidate, Factors, Outcome, ValueSource
from wayline_decision.serving.loaded import ServingModel


def _scores(model: ServingModel) -> dict[str, tuple[float, float]]:
    scores = model.score(model.encode(FEATURES), list(range(len(ACTIONS))))
    return {a: (float(scores.propensity[i]), float(scores.value[i])) for i, a in enumerate(ACTIONS)}


def test_decide_priority_is_the_product_of_the_four_factors(tmp_path: Path, model: ServingModel) -> None:
    decision = rig(tmp_path, model).decider.decide(
        "acme",
        ask(
            Candidate("email_newsletter", "CHANNEL_UNSPECIFIED", value=10.0, lever=2.0, context_weight=0.5),
            Candidate("discount_10", "CHANNEL_UNSPECIFIED", value=30.0),
            Candidate("call_back", "CHANNEL_UNSPECIFIED", value=5.0, lever=0.1),
            max_actions=3,
        ),
    )
    expected = _scores(model)
    by_id = {r.candidate.action_id: r.factors for r in decision.candidates}
    for action_id, (value, lever, weight) in {
        "email_newsletter": (10.0, 2.0, 0.5),
        "discount_10": (30.0, 1.0, 1.0),
        "call_back": (5.0, 0.1, 1.0),
    }.items():
        factors = by_id[action_id]
        assert factors is not None
        propensity = expected[action_id][0]
        assert factors.propensity == pytest.approx(propensity, abs=1e-7)
        assert (factors.value, factors.lever, factors.context_weight) == (value, lever, weight)
        assert factors.priority == pytest.approx(propensity * weight * value * lever)
        assert factors.expected_value == pytest.approx(propensity * value)
        assert factors.value_source is ValueSource.REQUEST
    priorities = [r.factors.priority for r in decision.returned if r.factors]
    assert priorities == sorted(priorities, reverse=True)
    assert ids(decision.returned) == ["discount_10", "email_newsletter", "call_back"]
    assert [r.outcome for r in decision.returned] == [Outcome.CHOSEN, Outcome.RETURNED, Outcome.RETURNED]
    assert decision.chosen_action_id == "discount_10"
    assert decision.chosen_probability == 1.0


def test_decide_value_comes_from_request_else_catalogue_else_value_graph(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.add("discount_10", value=50.0, lever=3.0)
    r.add("call_back", value=7.0)
    decision = r.decider.decide(
        "acme",
        ask(
            Candidate("discount_10", "CHANNEL_UNSPECIFIED"),  # catalogue's value and lever
            Candidate("call_back", "CHANNEL_UNSPECIFIED", value=2.0),  # the request's value wins
            "push_reminder",  # neither: the package's E[value | convert]
            max_actions=3,
        ),
    )
    expected = _scores(model)
    factors = {r.candidate.action_id: r.factors for r in decision.candidates}
    assert factors["discount_10"] is not None
    assert (factors["discount_10"].value, factors["discount_10"].lever) == (50.0, 3.0)
    assert factors["discount_10"].value_source is ValueSource.CATALOGUE
    assert factors["call_back"] is not None
    assert (factors["call_back"].value, factors["call_back"].value_source) == (2.0, ValueSource.REQUEST)
    push = factors["push_reminder"]
    assert push is not None
    assert push.value == pytest.approx(expected["push_reminder"][1], rel=1e-6)
    assert push.value_source is ValueSource.MODEL
    assert push.expected_value == pytest.approx(expected["push_reminder"][0] * expected["push_reminder"][1])


def test_decide_without_stated_values_ranks_by_expected_model_value(
    tmp_path: Path, model: ServingModel
) -> None:
    decision = rig(tmp_path, model).decider.decide("acme", ask(*ACTIONS, max_actions=4))
    expected = _scores(model)
    best = sorted(ACTIONS, key=lambda a: -expected[a][0] * expected[a][1])
    assert ids(decision.returned) == best


def test_ties_break_by_propensity_then_action_id() -> None:
    def pair(action_id: str, propensity: float) -> tuple[Candidate, Factors]:
        return Candidate(action_id, "CHANNEL_WEB"), Factors(
            propensity, 0.0, 1.0, 1.0, 0.0, ValueSource.REQUEST
        )

    ranked = rank([pair("b", 0.2), pair("c", 0.3), pair("a", 0.2), pair("d", 0.1)])
    assert [c.action_id for c, _ in ranked] == ["c", "a", "b", "d"]


def test_decide_equal_priorities_rank_the_same_whatever_the_order(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    zero = {"context_weight": 0.0}
    forward = r.decider.decide(
        "acme",
        ask(*(Candidate(a, "CHANNEL_UNSPECIFIED", **zero) for a in ACTIONS), max_actions=4),  # type: ignore[arg-type]
    )
    backward = r.decider.decide(
        "acme",
        ask(*(Candidate(a, "CHANNEL_UNSPECIFIED", **zero) for a in reversed(ACTIONS)), max_actions=4),  # type: ignore[arg-type]
    )
    expected = _scores(model)
    assert ids(forward.returned) == ids(backward.returned) == sorted(ACTIONS, key=lambda a: -expected[a][0])


def test_decide_returns_max_actions_and_traces_the_rest(tmp_path: Path, model: ServingModel) -> None:
    decision = rig(tmp_path, model).decider.decide("acme", ask(*ACTIONS, max_actions=2))
    assert len(decision.returned) == 2
    outcomes = [(r.outcome, r.rank) for r in decision.candidates]
    assert outcomes == [
        (Outcome.CHOSEN, 1),
        (Outcome.RETURNED, 2),
        (Outcome.NOT_RETURNED, 3),
        (Outcome.NOT_RETURNED, 4),
    ]
