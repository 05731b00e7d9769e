"""`python -m bench ml`: training and export times for a default and a large synthetic table, each beside its
same-run baseline. Each figure is the best of 3 runs (1 for the large table): the cores are shared.

- training: `wayline_ml.train.train` (time split, response + value models, early stopping) vs a bare
  `xgboost.train` of the response model on the same design matrix for the same number of rounds;
- export: `export_models` (two onnxmltools conversions, checker, parity on up to 50k held-out rows under every
  action) — its own cost, no baseline;
- inference: the exported response model in onnxruntime (one thread) vs the booster's `inplace_predict` (the
  configured threads) on up to 50k held-out customers x every action.

Tables come from tests/ml/synthetic.py (the journey generator will replace it), one decision per customer,
5 planted-signal features + noise features.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import xgboost as xgb
from rich.console import Console
from rich.table import Table

from tests.ml.synthetic import make_table
from wayline_ml.design import candidate_matrix, design_matrix
from wayline_ml.export import INPUT_NAME, ExportedModels, export_models, session
from wayline_ml.train import TrainConfig, TrainedModels, train

CONFIGS = {"default": 50_000, "large": 1_000_000}
FEATURES = 30


def _best(work: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The fastest of `repeats` runs and its result: the cores are shared, so the minimum is the figure
    least disturbed by neighbours."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(name: str, rows: int, console: Console) -> list[str]:
    table = make_table(rows, seed=11, noise_features=FEATURES - 5)
    config = TrainConfig()
    repeats = 3 if rows <= 100_000 else 1
    ours, result = _best(lambda: train(table, config), repeats)
    assert isinstance(result, TrainedModels)
    models = result

    fit = models.split.fit(table)
    matrix = xgb.DMatrix(
        design_matrix(fit.features, fit.action_index(), len(table.actions)), label=fit.converted
    )
    params = config.params("binary:logistic", "logloss")
    bare, _ = _best(lambda: xgb.train(params, matrix, num_boost_round=models.rounds["response"]), repeats)

    holdout = models.split.holdout(table)
    export, done = _best(lambda: export_models(models, holdout.features), repeats)
    assert isinstance(done, ExportedModels)
    exported = done

    candidates = candidate_matrix(holdout.features[:50_000], len(table.actions))
    onnx_session = session(exported.response)
    onnx_s, _ = _best(lambda: onnx_session.run(["probabilities"], {INPUT_NAME: candidates}), 3)
    # inplace_predict, like onnxruntime, takes the numpy rows as they are; Booster.predict on a reused DMatrix
    # would return XGBoost's prediction cache and time nothing.
    xgb_s, _ = _best(lambda: models.response.inplace_predict(candidates), 3)
    parity = max(p.max_scaled_diff for p in exported.parity)
    console.log(f"{name}: {rows:,} rows, trees {models.rounds}, parity {parity:.1e}")
    return [
        name,
        f"{rows:,} x {FEATURES}",
        f"{ours:.2f} s ({rows / ours:,.0f} rows/s)",
        f"{bare:.2f} s",
        f"{ours / bare:.2f}",
        f"{export:.2f} s",
        f"{len(candidates) / onnx_s:,.0f} / {len(candidates) / xgb_s:,.0f}",
        f"{np.float64(onnx_s / xgb_s):.2f}",
    ]


def main(configs: tuple[str, ...] = ("default", "large")) -> None:
    console = Console(width=200)
    table = Table(
        title="ML: training and export (2 threads for XGBoost, 1 for onnxruntime)", title_justify="left"
    )
    columns = (
        "config",
        "table",
        "train (both models, early stopping)",
        "bare xgboost.train (response, same rounds)",
        "ratio",
        "export + parity",
        "inference rows/s onnx / xgboost",
        "ratio (time)",
    )
    for column in columns:
        table.add_column(column)
    for name in configs:
        table.add_row(*run(name, CONFIGS[name], console))
    console.print(table)
