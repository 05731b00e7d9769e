"""A training run on disk, between `wayline ml train` and `evaluate`/`package`: the two boosters in XGBoost's
own UBJSON format and `run.json` with the feature spec, action list, config and split they were trained with.

It is a working directory, not a deliverable: what is served is the model package (`wayline_ml.package`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import xgboost as xgb

from wayline_ml.feature_spec import spec_from_json, spec_json
from wayline_ml.split import TimeSplit
from wayline_ml.train import TrainConfig, TrainedModels
from wayline_ml.training_table import FeatureSchema

__all__ = ["load_run", "save_run"]

_RUN_FILE = "run.json"


def save_run(models: TrainedModels, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    models.response.save_model(folder / "response.ubj")
    models.value.save_model(folder / "value.ubj")
    record = {
        "feature_spec": json.loads(spec_json(models.schema.spec)),
        "actions": list(models.actions),
        "config": dataclasses.asdict(models.config),
        "split": dataclasses.asdict(models.split),
        "training_from_us": models.training_from_us,
        "training_to_us": models.training_to_us,
        "rounds": models.rounds,
    }
    (folder / _RUN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def load_run(folder: Path) -> TrainedModels:
    record = json.loads((folder / _RUN_FILE).read_text(encoding="utf-8"))
    config = TrainConfig(**record["config"])
    boosters = []
    for role in ("response", "value"):
        booster = xgb.Booster(params={"nthread": config.nthread}, model_file=folder / f"{role}.ubj")
        boosters.append(booster)
    schema = FeatureSchema(spec_from_json(json.dumps(record["feature_spec"])))
    return TrainedModels(
        response=boosters[0],
        value=boosters[1],
        schema=schema,
        actions=tuple(record["actions"]),
        config=config,
        split=TimeSplit(**record["split"]),
        training_from_us=record["training_from_us"],
        training_to_us=record["training_to_us"],
        rounds=record["rounds"],
    )
