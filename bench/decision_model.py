"""The decision benchmarks' model: a real package written by `wayline_ml` (train → export → package) with 60
features and 8 actions, 100 boosting rounds of depth 6, trained on a seeded synthetic table.

The issue's "800-tree" model is a multi-class booster (8 actions x 100 rounds); ours is one binary response
model over the features followed by the action's one-hot (an S-learner, see `wayline_ml.train`), so its
response graph holds one tree per round: 100 trees of depth <= 6, plus a value graph of up to 100 more. Early
stopping is given as many rounds as the budget, so the response model keeps all 100 unless validation loss
turns back up (the builder reports the counts it got).

Reused by the decision-scoring benchmark and by the Decide-through-the-gateway one; `build_package` caches
the trained models per process, so writing a second package costs a copy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from wayline_ml.evaluate import Evaluation, evaluate
from wayline_ml.export import ExportedModels, export_models
from wayline_ml.feature_spec import declared_spec
from wayline_ml.package import write_package
from wayline_ml.train import TrainConfig, TrainedModels, train
from wayline_ml.training_table import FeatureSchema, TrainingTable, ValueType

__all__ = ["ACTIONS", "FEATURES", "ROUNDS", "build_package", "sample_features", "trained"]

FEATURES = 60
ACTIONS = tuple(f"offer_{i}" for i in range(8))
ROUNDS = 100
DEPTH = 6
ROWS = 40_000
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
CONFIG = TrainConfig(
    max_rounds=ROUNDS, early_stopping_rounds=ROUNDS, max_depth=DEPTH, learning_rate=0.1, seed=3
)


def _schema() -> FeatureSchema:
    columns: list[tuple[str, str]] = [(f"f{i:02d}", ValueType.FLOAT) for i in range(FEATURES)]
    return FeatureSchema(declared_spec("bench_nbo", "1", columns))


def sample_features(rows: int, seed: int) -> np.ndarray:
    """Feature rows distributed as the training table's (standard normal, 3% missing)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    features[rng.uniform(size=features.shape) < 0.03] = np.nan
    return features


def _table(rows: int, seed: int) -> TrainingTable:
    """One uniformly random action per customer; each action's effect depends on a few features of its own
    (so trees split on features and on the action), the base propensity on a dozen more."""
    rng = np.random.default_rng(seed)
    features = sample_features(rows, seed)
    x = np.nan_to_num(features)
    action = rng.integers(0, len(ACTIONS), rows)
    base = -1.5 + x[:, :12] @ rng.normal(scale=0.25, size=12)
    effects = np.stack(
        [0.6 * x[:, 12 + 3 * a] - 0.4 * x[:, 13 + 3 * a] * x[:, 14 + 3 * a] for a in range(len(ACTIONS))],
        axis=1,
    )
    logit = base + effects[np.arange(rows), action]
    converted = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    basket = 50.0 + 10.0 * np.abs(x[:, 40]) + rng.gamma(4.0, 5.0, rows)
    value = np.where(converted == 1, np.round(basket, 2), 0.0)
    return TrainingTable(
        schema=_schema(),
        actions=ACTIONS,
        features=features,
        person_id=np.array([f"b{i}" for i in range(rows)]),
        decision_time_us=START_US + np.arange(rows, dtype=np.int64) * 20_000_000,
        action=np.array(ACTIONS)[action],
        propensity=np.full(rows, 1 / len(ACTIONS)),
        converted=converted,
        value=value,
    ).validate()


@cache
def trained() -> tuple[TrainedModels, Evaluation, ExportedModels]:
    """The models, their evaluation and their ONNX export; trained once per process."""
    table = _table(ROWS, seed=19)
    models = train(table, CONFIG)
    holdout = models.split.holdout(table)
    return models, evaluate(models, table), export_models(models, holdout.features, max_rows=4_000)


def build_package(dest: Path, *, model_id: str = "bench-nbo", version: str = "1") -> Path:
    """The package written by `wayline_ml.package.write_package` at `dest` (which must not exist)."""
    models, evaluation, exported = trained()
    write_package(
        dest, name=model_id, version=version, models=models, evaluation=evaluation, exported=exported
    )
    return dest
