"""Training: one response model and one value model, XGBoost on CPU, on a time split of a training table.

**One response model with the action as input (an S-learner), not one model per action (a T-learner).** The
response model predicts P(convert | features, action) from the features followed by a one-hot of the action.
With one model every action's estimate is learnt from all rows: what does not depend on the action (a
customer's base propensity to buy) is learnt once from k times the data, and trees split on the action where
its effect differs by customer, which is the heterogeneity the policy needs. Per-action models each see 1/k of
the rows, and the policy compares differences of independently fitted models, whose noise adds up; their one
advantage, that a weak action effect cannot be regularised away, we watch for in the policy's offline value
instead. It also ships as one ONNX file that scores a customer's k candidates in one batched call. A
multi-class model of "which action" would predict the logging policy, not the response, so it is not an
option here.

**Value given conversion, not a direct value regression.** The value model predicts E[value | converted,
features, action] from converted rows only; the expected value of an action is P(convert) * that. A direct
regression on the realised value (zero for most rows) mixes the two parts into one zero-inflated target that
squared error fits poorly, and the split keeps the calibrated probability usable on its own.

Determinism: `hist` trees, a fixed `nthread` and `seed`, no row or column sampling by default; the same table
and config give identical models (tests/ml/test_training.py checks the predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from wayline_ml.design import candidate_matrix, design_matrix
from wayline_ml.split import TimeSplit, split_by_time
from wayline_ml.training_table import FeatureSchema, TrainingTable, TrainingTableError

__all__ = ["Scores", "TrainConfig", "TrainedModels", "train"]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """XGBoost's knobs and the split; defaults suit tens of thousands to millions of rows on a few cores."""

    max_rounds: int = 400
    early_stopping_rounds: int = 25
    max_depth: int = 5
    learning_rate: float = 0.1
    min_child_weight: float = 5.0
    nthread: int = 2
    seed: int = 0
    holdout_fraction: float = 0.2
    validation_fraction: float = 0.1

    def params(self, objective: str, eval_metric: str) -> dict[str, object]:
        return {
            "objective": objective,
            "eval_metric": eval_metric,
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "min_child_weight": self.min_child_weight,
            "nthread": self.nthread,
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True)
class Scores:
    """Per row and candidate action: (rows, actions) arrays."""

    p_convert: npt.NDArray[np.float64]
    value_if_converted: npt.NDArray[np.float64]

    @property
    def expected_value(self) -> npt.NDArray[np.float64]:
        return self.p_convert * self.value_if_converted


@dataclass(frozen=True, slots=True)
class TrainedModels:
    """The two boosters (cut to their best iteration) and what they were trained on."""

    response: xgb.Booster
    value: xgb.Booster
    schema: FeatureSchema
    actions: tuple[str, ...]
    config: TrainConfig
    split: TimeSplit
    training_from_us: int  # first decision time seen by training (fit + early-stopping slice)
    training_to_us: int  # last decision time seen by training
    rounds: dict[str, int] = field(default_factory=dict)  # trees kept per model

    @property
    def n_inputs(self) -> int:
        return len(self.schema) + len(self.actions)

    def score(self, features: npt.NDArray[np.float32]) -> Scores:
        """Both models' predictions for every row under every action."""
        k = len(self.actions)
        candidates = xgb.DMatrix(candidate_matrix(features, k), nthread=self.config.nthread)
        rows = features.shape[0]
        p = self.response.predict(candidates).astype(np.float64).reshape(rows, k)
        v = self.value.predict(candidates).astype(np.float64).reshape(rows, k)
        return Scores(p_convert=p, value_if_converted=v)

    def predict_logged(self, table: TrainingTable) -> npt.NDArray[np.float32]:
        """P(convert) for each row under the action it logged (what AUC and calibration judge)."""
        design = design_matrix(table.features, table.action_index(), len(self.actions))
        result: npt.NDArray[np.float32] = self.response.predict(
            xgb.DMatrix(design, nthread=self.config.nthread)
        )
        return result


def train(table: TrainingTable, config: TrainConfig | None = None) -> TrainedModels:
    """Split `table` by time, fit the response and value models with early stopping, return both."""
    config = config or TrainConfig()
    table.validate()
    split = split_by_time(table, config.holdout_fraction, config.validation_fraction)
    fit, validation = split.fit(table), split.validation(table)
    k = len(table.actions)
    fit_x = design_matrix(fit.features, fit.action_index(), k)
    val_x = design_matrix(validation.features, validation.action_index(), k)
    response = _fit(
        config.params("binary:logistic", "logloss"),
        (fit_x, fit.converted),
        (val_x, validation.converted),
        config,
    )
    fit_won, val_won = fit.converted == 1, validation.converted == 1
    if fit_won.sum() < 10 or val_won.sum() < 1:
        raise TrainingTableError("too few conversions before the cut-off to fit the value model")
    value = _fit(
        config.params("reg:squarederror", "rmse"),
        (fit_x[fit_won], fit.value[fit_won]),
        (val_x[val_won], validation.value[val_won]),
        config,
    )
    return TrainedModels(
        response=response,
        value=value,
        schema=table.schema,
        actions=table.actions,
        config=config,
        split=split,
        training_from_us=int(table.decision_time_us[0]),
        training_to_us=int(table.decision_time_us[split.holdout_start - 1]),
        rounds={"response": response.num_boosted_rounds(), "value": value.num_boosted_rounds()},
    )


def _fit(
    params: dict[str, object],
    fit: tuple[npt.NDArray[np.float32], npt.NDArray[np.generic]],
    validation: tuple[npt.NDArray[np.float32], npt.NDArray[np.generic]],
    config: TrainConfig,
) -> xgb.Booster:
    train_matrix = xgb.DMatrix(fit[0], label=fit[1], nthread=config.nthread)
    val_matrix = xgb.DMatrix(validation[0], label=validation[1], nthread=config.nthread)
    booster = xgb.train(
        params,
        train_matrix,
        num_boost_round=config.max_rounds,
        evals=[(val_matrix, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    # xgb.train returns every tree it grew, including the ones past the best round; keep only the best, so
    # XGBoost's predictions, the exported ONNX model and the manifest's tree count all mean the same model.
    return booster[: booster.best_iteration + 1]
