"""Evaluation on the held-out rows (decisions after the time cut-off): the response model's AUC, log loss and
calibration under the logged actions, the value model's error on held-out conversions, and the offline value
of the learned policy — argmax over actions of P(convert | x, a) * E[value | converted, x, a] — against the
uniformly random policy and the best single action, by IPW and SNIPS with a bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wayline_ml.metrics import ClassifierMetrics, classifier_metrics
from wayline_ml.policy_value import PolicyComparison, compare_policies
from wayline_ml.train import TrainedModels
from wayline_ml.training_table import TrainingTable

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    holdout_rows: int
    holdout_from_us: int
    holdout_to_us: int
    response: ClassifierMetrics
    value_rmse: float  # on held-out converted rows, under their logged action
    value_mean: float  # the mean held-out conversion value, to read the RMSE against
    policy: PolicyComparison
    chosen_share: dict[str, float]  # how often the learned policy picks each action

    def summary(self) -> dict[str, float]:
        """The headline numbers, flat, for the manifest and the CLI's table."""
        return {
            "holdout_rows": float(self.holdout_rows),
            "auc": self.response.auc,
            "log_loss": self.response.log_loss,
            "expected_calibration_error": self.response.expected_calibration_error,
            "base_rate": self.response.base_rate,
            "value_rmse": self.value_rmse,
            "policy_ipw_learned": self.policy.learned.ipw,
            "policy_snips_learned": self.policy.learned.snips,
            "policy_ipw_random": self.policy.random.ipw,
            "policy_ipw_best_single": self.policy.best_single.ipw,
            "lift_vs_random": self.policy.lift_vs_random,
            "lift_vs_best_single": self.policy.lift_vs_best_single,
        }


def evaluate(models: TrainedModels, table: TrainingTable, *, bootstrap_rounds: int = 200) -> Evaluation:
    """Judge `models` on the held-out part of `table` (the same table, and so the same split, they were
    trained on)."""
    holdout = models.split.holdout(table)
    response = classifier_metrics(holdout.converted, models.predict_logged(holdout))
    scores = models.score(holdout.features)
    logged = holdout.action_index()
    won = holdout.converted == 1
    predicted_value = scores.value_if_converted[np.arange(len(holdout)), logged][won]
    value_rmse = float(np.sqrt(np.mean((predicted_value - holdout.value[won]) ** 2))) if won.any() else 0.0
    chosen = np.argmax(scores.expected_value, axis=1).astype(np.int64)
    policy = compare_policies(
        chosen,
        logged,
        holdout.propensity,
        holdout.reward(),
        models.actions,
        rounds=bootstrap_rounds,
        seed=models.config.seed,
    )
    share = np.bincount(chosen, minlength=len(models.actions)) / len(chosen)
    return Evaluation(
        holdout_rows=len(holdout),
        holdout_from_us=int(holdout.decision_time_us[0]),
        holdout_to_us=int(holdout.decision_time_us[-1]),
        response=response,
        value_rmse=value_rmse,
        value_mean=float(holdout.value[won].mean()) if won.any() else 0.0,
        policy=policy,
        chosen_share={action: float(s) for action, s in zip(models.actions, share, strict=True)},
    )
