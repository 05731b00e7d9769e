"""One small synthetic table, trained, evaluated, exported and packaged once per session (the steps are
deterministic, so tests that only read them can share them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ml.synthetic import make_table
from wayline_ml.evaluate import Evaluation, evaluate
from wayline_ml.export import ExportedModels, export_models
from wayline_ml.package import write_package
from wayline_ml.train import TrainConfig, TrainedModels, train
from wayline_ml.training_table import TrainingTable

SMALL = TrainConfig(max_rounds=200, max_depth=4, early_stopping_rounds=15, nthread=2, seed=7)


@pytest.fixture(scope="session")
def table() -> TrainingTable:
    return make_table(12_000, seed=3)


@pytest.fixture(scope="session")
def models(table: TrainingTable) -> TrainedModels:
    return train(table, SMALL)


@pytest.fixture(scope="session")
def evaluation(models: TrainedModels, table: TrainingTable) -> Evaluation:
    return evaluate(models, table)


@pytest.fixture(scope="session")
def exported(models: TrainedModels, table: TrainingTable) -> ExportedModels:
    return export_models(models, models.split.holdout(table).features)


@pytest.fixture(scope="session")
def package(
    tmp_path_factory: pytest.TempPathFactory,
    models: TrainedModels,
    evaluation: Evaluation,
    exported: ExportedModels,
) -> Path:
    dest = tmp_path_factory.mktemp("registry") / "acme" / "nba" / "1.0.0"
    write_package(dest, name="nba", version="1.0.0", models=models, evaluation=evaluation, exported=exported)
    return dest
