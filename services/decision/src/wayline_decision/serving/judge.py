"""The canary judge's statistics: from each arm's decisions and conversions, PROMOTE, ROLL_BACK or WAIT.

The test is an always-valid confidence sequence for the difference of the two conversion rates (canary
minus stable), the normal-mixture boundary behind the mixture sequential probability ratio test (Robbins
1970; Johari, Pekelis and Walsh, "Always valid inference", 2017). With V the estimated variance of the
difference (p_c(1-p_c)/n_c + p_s(1-p_s)/n_s) and tau the mixture's scale, the interval

    difference ± sqrt(V (V + tau²) / tau² · (2 ln(1/alpha) + ln((V + tau²) / V)))

holds the true difference at every look at once with probability at least 1 - alpha (asymptotically, with
the normal approximation). Why not a fixed-sample z-test: the judge looks again every period as feedback
arrives and acts on the first significant look, and a 5% z-test looked at 40 times promotes an equal canary
about a quarter of the time (tests/decision/traces/test_judge.py measures both). The price is width: at one
look the interval is wider than the z-test's (about 1.5x at the sample sizes the judge acts on), the cost of
being allowed to look at all times. A Bonferroni split of alpha over a fixed number of looks would also be
valid, but needs that number in advance, which a judge that runs until it decides does not have.

The verdict: PROMOTE when the interval's lower bound is above `margin` (the canary converts better by more
than the margin), ROLL_BACK when its upper bound is below -`margin`, WAIT otherwise, and always WAIT until
each arm has `min_decisions`. An equal canary (true difference within ±margin) gets a wrong verdict at most
alpha of the time however often it is judged. gRPC-free: the periodic task that applies verdicts through
the model lifecycle calls `judge(counts, policy)` with the counts of `judge_counts.canary_counts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["ArmCounts", "CanaryCounts", "JudgePolicy", "Judgement", "Verdict", "confidence_sequence", "judge"]


class Verdict(Enum):
    WAIT = "wait"
    PROMOTE = "promote"
    ROLL_BACK = "roll_back"


@dataclass(frozen=True)
class ArmCounts:
    decisions: int
    conversions: int  # decisions with at least one conversion

    @property
    def rate(self) -> float:
        return self.conversions / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class CanaryCounts:
    stable: ArmCounts
    canary: ArmCounts


@dataclass(frozen=True)
class JudgePolicy:
    margin: float = 0.0  # a difference of conversion rates, 0 to 1
    min_decisions: int = 1000  # per arm, before any verdict but WAIT
    confidence: float = 0.95  # 1 - alpha
    # The mixture's scale: the size of difference the test is most sensitive to. Two points of conversion
    # rate suits conversion rates of a few percent to a few tens of percent; the guarantee holds for any.
    mixture_scale: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ValueError("margin must be in [0, 1)")
        if self.min_decisions < 1:
            raise ValueError("min_decisions must be at least 1")
        if not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must be in [0.5, 1)")
        if self.mixture_scale <= 0:
            raise ValueError("mixture_scale must be positive")


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    counts: CanaryCounts
    difference: float  # canary rate - stable rate
    lower: float  # the always-valid interval of the difference
    upper: float
    explanation: str


def _variance(arm: ArmCounts) -> float:
    # Shrunk half a conversion towards 1/2 so that an arm with no (or only) conversions yet does not claim a
    # variance of zero, which would make the interval collapse on the first look.
    p = (arm.conversions + 0.5) / (arm.decisions + 1)
    return p * (1 - p) / arm.decisions


def confidence_sequence(counts: CanaryCounts, alpha: float, tau: float) -> tuple[float, float, float]:
    """(difference, lower, upper): the canary's rate minus the stable's, and its always-valid interval at
    level 1 - alpha."""
    difference = counts.canary.rate - counts.stable.rate
    variance = _variance(counts.canary) + _variance(counts.stable)
    tau2 = tau * tau
    radius = math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )
    return difference, difference - radius, difference + radius


def judge(counts: CanaryCounts, policy: JudgePolicy) -> Judgement:
    stable, canary = counts.stable, counts.canary
    figures = (
        f"canary {canary.conversions}/{canary.decisions} ({canary.rate:.2%}) against stable "
        f"{stable.conversions}/{stable.decisions} ({stable.rate:.2%})"
    )
    if min(stable.decisions, canary.decisions) < policy.min_decisions:
        difference = canary.rate - stable.rate
        return Judgement(
            Verdict.WAIT,
            counts,
            difference,
            -1.0,
            1.0,
            f"wait: {figures}; each arm needs {policy.min_decisions} decisions first",
        )
    difference, lower, upper = confidence_sequence(counts, 1 - policy.confidence, policy.mixture_scale)
    interval = (
        f"difference {difference:+.2%}, {policy.confidence:.0%} always-valid interval "
        f"[{lower:+.2%}, {upper:+.2%}]"
    )
    if lower > policy.margin:
        verdict, why = (
            Verdict.PROMOTE,
            f"the canary converts better by more than the margin ({policy.margin:.2%})",
        )
    elif upper < -policy.margin:
        verdict, why = (
            Verdict.ROLL_BACK,
            f"the canary converts worse by more than the margin ({policy.margin:.2%})",
        )
    else:
        verdict, why = Verdict.WAIT, f"not enough evidence either way for the margin ({policy.margin:.2%})"
    return Judgement(
        verdict, counts, difference, lower, upper, f"{verdict.value}: {why}: {figures}; {interval}"
    )
