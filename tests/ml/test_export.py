"""XGBoost → ONNX: parity on held-out rows with real onnxruntime, and a loud failure when it is broken."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ml.conftest import SMALL
from wayline_ml.design import candidate_matrix
from wayline_ml.export import (
    INPUT_NAME,
    PARITY_TOLERANCE,
    ExportedModels,
    ParityError,
    check_parity,
    session,
)
from wayline_ml.train import TrainedModels, train
from wayline_ml.training_table import TrainingTable


def test_export_parity_on_held_out_rows_under_every_action(
    table: TrainingTable, models: TrainedModels, exported: ExportedModels
) -> None:
    holdout = models.split.holdout(table)
    assert np.isnan(holdout.features).any()  # missing values take the same branch in both runtimes
    response, value = exported.parity
    assert response.rows == value.rows == len(holdout) * len(models.actions)
    assert response.output == "probabilities"
    assert response.max_abs_diff <= PARITY_TOLERANCE
    assert value.max_scaled_diff <= PARITY_TOLERANCE


def test_onnx_models_choose_the_same_actions_as_xgboost(
    table: TrainingTable, models: TrainedModels, exported: ExportedModels
) -> None:
    features = models.split.holdout(table).features
    rows = candidate_matrix(features, len(models.actions))
    p = session(exported.response).run(["probabilities"], {INPUT_NAME: rows})[0][:, 1]
    v = session(exported.value).run(["variable"], {INPUT_NAME: rows})[0][:, 0]
    onnx_choice = np.argmax((p * v).reshape(len(features), -1), axis=1)
    xgb_choice = np.argmax(models.score(features).expected_value, axis=1)
    assert np.mean(onnx_choice == xgb_choice) > 0.999  # ties within float32 noise may differ, nothing else


def test_parity_check_fails_loudly_against_another_model(
    table: TrainingTable, models: TrainedModels, exported: ExportedModels
) -> None:
    other = train(table, SMALL.__class__(max_rounds=20, max_depth=2, nthread=2, seed=1))
    rows = candidate_matrix(models.split.holdout(table).features[:500], len(models.actions))
    with pytest.raises(
        ParityError, match=r"response model: ONNX output 'probabilities' differs from XGBoost"
    ):
        check_parity(other.response, exported.response, rows, "response")
