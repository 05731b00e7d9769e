"""Offline value of a policy from logged decisions, by inverse propensity weighting.

A logged row says: the logging policy chose action a with probability p, and the reward r followed. A target
policy π that would choose a with probability π(a|x) gets weight w = π(a|x) / p, and

- IPW   = mean(w · r)           — unbiased when every p is right and positive, high variance;
- SNIPS = sum(w · r) / sum(w)   — self-normalised: a little biased, much steadier when weights are large.

For a deterministic policy only the rows whose logged action is the one it picks count (`matched`). The
bootstrap resamples the held-out rows once per round and evaluates every policy on the same resample, so the
lift's interval is paired rather than the difference of two independent intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PolicyComparison", "PolicyValue", "compare_policies"]


@dataclass(frozen=True, slots=True)
class PolicyValue:
    name: str
    ipw: float
    snips: float
    matched: int  # rows with a non-zero weight
    low: float  # bootstrap interval of the IPW value
    high: float


@dataclass(frozen=True, slots=True)
class PolicyComparison:
    learned: PolicyValue
    random: PolicyValue
    best_single: PolicyValue  # the single action with the highest IPW value on these same rows
    single_actions: tuple[PolicyValue, ...]
    lift_vs_random: float  # IPW(learned) / IPW(random) - 1
    lift_vs_best_single: float
    lift_vs_best_single_interval: tuple[float, float]
    bootstrap_rounds: int
    confidence: float


def compare_policies(
    chosen: npt.NDArray[np.int64],
    logged_action: npt.NDArray[np.int64],
    propensity: npt.NDArray[np.float64],
    reward: npt.NDArray[np.float64],
    actions: tuple[str, ...],
    *,
    rounds: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> PolicyComparison:
    """Value the learned policy (`chosen` action per row), the uniformly random policy and every single
    action on the same logged rows. The best single action is picked on these rows, which flatters that
    baseline: the learned policy must beat the best action in hindsight."""
    k = len(actions)
    names = ["learned", "random", *actions]
    weights = np.empty((len(reward), len(names)))
    weights[:, 0] = (chosen == logged_action) / propensity
    weights[:, 1] = (1.0 / k) / propensity
    for a in range(k):
        weights[:, 2 + a] = (logged_action == a) / propensity
    contributions = weights * reward[:, None]
    ipw = contributions.mean(axis=0)
    snips = contributions.sum(axis=0) / np.maximum(weights.sum(axis=0), np.finfo(float).tiny)
    boot = _bootstrap(contributions, rounds, seed)
    best = 2 + int(np.argmax(ipw[2:]))
    alpha = (1 - confidence) / 2

    def value(column: int) -> PolicyValue:
        low, high = np.quantile(boot[:, column], [alpha, 1 - alpha])
        matched = int((weights[:, column] > 0).sum())
        return PolicyValue(names[column], float(ipw[column]), float(snips[column]), matched, low, high)

    lift_boot = boot[:, 0] / np.maximum(boot[:, best], np.finfo(float).tiny) - 1
    lift_low, lift_high = np.quantile(lift_boot, [alpha, 1 - alpha])
    return PolicyComparison(
        learned=value(0),
        random=value(1),
        best_single=value(best),
        single_actions=tuple(value(2 + a) for a in range(k)),
        lift_vs_random=float(ipw[0] / ipw[1] - 1),
        lift_vs_best_single=float(ipw[0] / ipw[best] - 1),
        lift_vs_best_single_interval=(float(lift_low), float(lift_high)),
        bootstrap_rounds=rounds,
        confidence=confidence,
    )


def _bootstrap(contributions: npt.NDArray[np.float64], rounds: int, seed: int) -> npt.NDArray[np.float64]:
    """IPW values per round and policy, (rounds, policies); a resample is a row-count vector, so each round
    costs one matrix-vector product instead of copying the rows."""
    rng = np.random.default_rng(seed)
    n = contributions.shape[0]
    result = np.empty((rounds, contributions.shape[1]))
    for round_ in range(rounds):
        result[round_] = np.bincount(rng.integers(0, n, n), minlength=n) @ contributions / n
    return result
