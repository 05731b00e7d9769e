"""A package as the ML pipeline writes it (`wayline_ml.package.write_package`): a small synthetic table,
trained, evaluated and exported once per process, packaged under any model id and version."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tests.ml.synthetic import make_table
from wayline_ml.evaluate import Evaluation, evaluate
from wayline_ml.export import ExportedModels, export_models
from wayline_ml.package import write_package
from wayline_ml.train import TrainConfig, TrainedModels, train

QUICK = TrainConfig(max_rounds=40, max_depth=3, early_stopping_rounds=10, nthread=2, seed=7)


@cache
def _trained() -> tuple[TrainedModels, Evaluation, ExportedModels]:
    table = make_table(3000, seed=5)
    models = train(table, QUICK)
    return models, evaluate(models, table), export_models(models, models.split.holdout(table).features)


def ml_package(dest: Path, *, model_id: str, version: str) -> Path:
    """A package written by wayline_ml at `dest` (which must not exist)."""
    models, evaluation, exported = _trained()
    write_package(
        dest, name=model_id, version=version, models=models, evaluation=evaluation, exported=exported
    )
    return dest


def ml_boosters() -> TrainedModels:
    """The XGBoost boosters the packages' graphs were exported from (for a reference TreeSHAP)."""
    return _trained()[0]
