"""The canary judge's statistics on simulated counts, seeded: verdicts, and the error rate of a judge that
looks again and again (the periodic judge) against a fixed-sample z-test looked at as often."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wayline.common.errors import InvalidArgument
from wayline.decision.v1 import model_pb2
from wayline_decision.judge_converters import evaluation_message, judge_policy
from wayline_decision.serving.judge import ArmCounts, CanaryCounts, JudgePolicy, Verdict, judge
from wayline_decision.serving.traffic import CanaryEvaluation

LOOKS = 40  # the judge looks after every 250 canary decisions, up to 10,000
CANARY_PER_LOOK, STABLE_PER_LOOK = 250, 2250  # a 10% canary
RUNS = 400


def _ever_decides(
    rng: np.random.Generator, p_stable: float, p_canary: float, policy: JudgePolicy
) -> set[Verdict]:
    """The verdicts other than WAIT that a judge looking after every batch would have reached."""
    stable = np.cumsum(rng.binomial(STABLE_PER_LOOK, p_stable, LOOKS))
    canary = np.cumsum(rng.binomial(CANARY_PER_LOOK, p_canary, LOOKS))
    seen: set[Verdict] = set()
    for look in range(LOOKS):
        counts = CanaryCounts(
            stable=ArmCounts(STABLE_PER_LOOK * (look + 1), int(stable[look])),
            canary=ArmCounts(CANARY_PER_LOOK * (look + 1), int(canary[look])),
        )
        verdict = judge(counts, policy).verdict
        if verdict is not Verdict.WAIT:
            seen.add(verdict)
            break  # the task acts on the first verdict
    return seen


def _z_test_ever_rejects(rng: np.random.Generator, p: float) -> bool:
    """A one-sided 5% two-proportion z-test (canary better), applied at every look."""
    stable = np.cumsum(rng.binomial(STABLE_PER_LOOK, p, LOOKS))
    canary = np.cumsum(rng.binomial(CANARY_PER_LOOK, p, LOOKS))
    for look in range(LOOKS):
        n_s, n_c = STABLE_PER_LOOK * (look + 1), CANARY_PER_LOOK * (look + 1)
        p_s, p_c = stable[look] / n_s, canary[look] / n_c
        pooled = (stable[look] + canary[look]) / (n_s + n_c)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_s + 1 / n_c))
        if se and (p_c - p_s) / se > 1.645:
            return True
    return False


@pytest.mark.timeout(300)
def test_judge_equal_canary_gets_a_verdict_at_most_alpha_of_the_time_under_repeated_looks() -> None:
    rng = np.random.default_rng(20261201)
    policy = JudgePolicy(margin=0.0, min_decisions=250, confidence=0.95)
    wrong = sum(bool(_ever_decides(rng, 0.10, 0.10, policy)) for _ in range(RUNS))
    naive = sum(_z_test_ever_rejects(rng, 0.10) for _ in range(RUNS))
    # alpha is 5%: allow three standard errors of a 400-run estimate above it.
    assert wrong / RUNS <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / RUNS), wrong
    # The fixed-sample test, looked at as often, errs several times as often: why the judge does not use it.
    assert naive / RUNS > 0.12, naive


@pytest.mark.timeout(300)
def test_judge_canary_exactly_at_the_margin_is_not_promoted_beyond_alpha() -> None:
    rng = np.random.default_rng(7)
    policy = JudgePolicy(margin=0.02, min_decisions=250, confidence=0.95)
    promoted = sum(Verdict.PROMOTE in _ever_decides(rng, 0.10, 0.12, policy) for _ in range(RUNS))
    assert promoted / RUNS <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / RUNS), promoted


def test_judge_promotes_a_clearly_better_canary_and_rolls_back_a_worse_one() -> None:
    rng = np.random.default_rng(11)
    policy = JudgePolicy(margin=0.01, min_decisions=250)
    better = [_ever_decides(rng, 0.10, 0.14, policy) for _ in range(100)]
    worse = [_ever_decides(rng, 0.10, 0.06, policy) for _ in range(100)]
    assert sum(v == {Verdict.PROMOTE} for v in better) >= 90
    assert sum(v == {Verdict.ROLL_BACK} for v in worse) >= 90


def test_judge_waits_below_the_minimum_sample_whatever_the_rates() -> None:
    counts = CanaryCounts(stable=ArmCounts(5000, 250), canary=ArmCounts(999, 400))
    judgement = judge(counts, JudgePolicy(min_decisions=1000))
    assert judgement.verdict is Verdict.WAIT
    assert "1000 decisions" in judgement.explanation


def test_judge_states_its_figures() -> None:
    counts = CanaryCounts(stable=ArmCounts(20_000, 2_000), canary=ArmCounts(5_000, 750))
    judgement = judge(counts, JudgePolicy(margin=0.01))
    assert judgement.verdict is Verdict.PROMOTE
    assert judgement.difference == pytest.approx(0.05)
    assert 0.01 < judgement.lower < 0.05 < judgement.upper
    assert "750/5000" in judgement.explanation
    assert "2000/20000" in judgement.explanation


def test_judge_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="confidence"):
        JudgePolicy(confidence=1.0)
    with pytest.raises(ValueError, match="margin"):
        JudgePolicy(margin=-0.1)


def test_judge_policy_from_the_contract_defaults_and_refusals() -> None:
    assert judge_policy(model_pb2.CanaryJudgement(enabled=False, margin=0.5)) is None
    assert judge_policy(model_pb2.CanaryJudgement(enabled=True)) == JudgePolicy(
        margin=0.0, min_decisions=1000, confidence=0.95
    )
    with pytest.raises(InvalidArgument) as raised:
        judge_policy(model_pb2.CanaryJudgement(enabled=True, margin=1.5, confidence=0.2, min_decisions=-1))
    assert sorted(v.field for v in raised.value.violations) == [
        "judgement.confidence",
        "judgement.margin",
        "judgement.min_decisions",
    ]


def test_evaluation_message_carries_the_figures() -> None:
    judgement = judge(CanaryCounts(ArmCounts(20_000, 2_000), ArmCounts(5_000, 750)), JudgePolicy(margin=0.01))
    message = evaluation_message(CanaryEvaluation(judgement, 1_000_000, "1", "2"))
    assert message.verdict == model_pb2.CANARY_VERDICT_PROMOTE
    assert (message.stable_version, message.canary_version) == ("1", "2")
    assert (message.canary_decisions, message.canary_conversions) == (5_000, 750)
    assert message.difference_lower == judgement.lower
    assert message.evaluate_time.seconds == 1
    assert message.explanation == judgement.explanation
