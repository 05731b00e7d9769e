"""Real XGBoost boosters for the explainer's tests, exported with onnxmltools exactly as `wayline_ml.export`
does, with their covers matched by `wayline_ml.covers`: deep trees over few features, so that a feature
splits several times along one path, and missing values in training, so that both default directions occur.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
import onnx
import xgboost as xgb

from wayline_decision.explain.covers import read_covers
from wayline_decision.explain.ensemble import read_ensemble
from wayline_decision.explain.treeshap import TreeShap
from wayline_ml.covers import graph_covers
from wayline_ml.export import to_onnx

WIDTH = 5


@dataclass(frozen=True)
class Exported:
    booster: xgb.Booster
    graph: onnx.ModelProto
    covers: bytes

    def explainer(self) -> TreeShap:
        graph = self.graph.SerializeToString()
        ensemble = read_ensemble(graph, WIDTH)
        return TreeShap(ensemble, read_covers(self.covers, ensemble))


def rows(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Rows with NaNs in every column (about 15%), including a few all-NaN rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, WIDTH)).astype(np.float32)
    x[rng.uniform(size=x.shape) < 0.15] = np.nan
    x[:3] = np.nan
    return x


def _export(booster: xgb.Booster) -> Exported:
    graph = to_onnx(booster, WIDTH)
    covers = json.dumps({"trees": graph_covers(booster, graph)}).encode()
    return Exported(booster, graph, covers)


@cache
def classifier() -> Exported:
    x = rows(3000, seed=1)
    z = np.nan_to_num(x, nan=0.5)
    logit = 1.5 * z[:, 0] - z[:, 1] * z[:, 2] + np.sin(3 * z[:, 0])
    label = (np.random.default_rng(2).uniform(size=len(x)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "seed": 0, "base_score": 0.3}
    return _export(xgb.train(params, xgb.DMatrix(x, label=label), 30))


@cache
def regressor() -> Exported:
    x = rows(3000, seed=3)
    z = np.nan_to_num(x, nan=-1.0)
    target = 40 + 10 * z[:, 0] + 5 * np.abs(z[:, 3]) * z[:, 4] + np.random.default_rng(4).normal(size=len(x))
    params = {"objective": "reg:squarederror", "max_depth": 6, "nthread": 1, "seed": 0}
    return _export(xgb.train(params, xgb.DMatrix(x, label=target), 30))
