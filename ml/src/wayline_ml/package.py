"""Writing a model package: a directory of `response.onnx`, `value.onnx`, `model_card.md` and `manifest.json`.

Packages are immutable. A package is written whole into a staging directory beside its destination,
validated there, and renamed into place in one step, so a reader sees either no package or a complete one;
a destination that already exists is refused rather than overwritten, and the files are made read-only.
Each ONNX file carries the feature schema and action list it was trained with in its metadata, so a manifest
edited after the fact cannot silently re-label its inputs (`validate` compares the two).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path

import onnx

from wayline_ml.design import action_columns
from wayline_ml.evaluate import Evaluation
from wayline_ml.export import INPUT_NAME, RESPONSE_OUTPUT, VALUE_OUTPUT, ExportedModels, Parity, opsets
from wayline_ml.manifest import (
    MANIFEST_FILE,
    FeatureEntry,
    Manifest,
    ModelEntry,
    ParityEntry,
    TensorSpec,
    TrainingWindow,
)
from wayline_ml.model_card import render_model_card
from wayline_ml.train import TrainedModels
from wayline_ml.validation import ACTIONS_KEY, FEATURES_KEY, PackageError, sha256_file, validate

__all__ = ["MODEL_CARD_FILE", "PackageExists", "publish", "validate", "write_package"]

MODEL_CARD_FILE = "model_card.md"
POLICY = (
    "For each candidate action a: expected_value = response.probabilities[:, 1] * value.variable[:, 0] "
    "on the "
    "row [features..., one_hot(a)]; choose the action with the largest expected_value."
)
_LIBRARIES = ("xgboost-cpu", "onnx", "onnxmltools", "onnxruntime", "numpy", "wayline-ml")


class PackageExists(PackageError):
    """The destination already holds a package (or anything else); packages are never overwritten."""


def write_package(
    dest: Path,
    *,
    name: str,
    version: str,
    models: TrainedModels,
    evaluation: Evaluation,
    exported: ExportedModels,
    created_at: datetime | None = None,
) -> Manifest:
    """Write, validate and publish the package at `dest` (which must not exist); return its manifest."""
    features = [
        FeatureEntry(name=f.name, type=f.type.value, categories=list(f.categories))
        for f in models.schema.features
    ]

    def build(staging: Path) -> None:
        stamp = {
            FEATURES_KEY: json.dumps([feature.model_dump(mode="json") for feature in features]),
            ACTIONS_KEY: json.dumps(list(models.actions)),
        }
        for file, model in (("response.onnx", exported.response), ("value.onnx", exported.value)):
            onnx.helper.set_model_props(model, stamp)
            onnx.save(model, staging / file)
        card = render_model_card(name, version, models, evaluation)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        manifest = Manifest(
            name=name,
            version=version,
            created_at=created_at or datetime.now(tz=UTC),
            features=features,
            actions=list(models.actions),
            models=[
                _entry("response", exported.parity[0], models),
                _entry("value", exported.parity[1], models),
            ],
            policy=POLICY,
            training_window=TrainingWindow(
                train_from=_utc(models.training_from_us),
                train_to=_utc(models.training_to_us),
                holdout_from=_utc(evaluation.holdout_from_us),
                holdout_to=_utc(evaluation.holdout_to_us),
            ),
            metrics=evaluation.summary(),
            files=files,
            onnx_opsets=opsets(exported.response) | opsets(exported.value),
            libraries={library: dist_version(library) for library in _LIBRARIES},
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")

    publish(dest, build)
    return validate(dest)


def publish(dest: Path, build: Callable[[Path], None]) -> None:
    """Run `build` on a fresh staging directory beside `dest`, validate it, make it read-only and rename it
    to `dest` atomically; refuse if `dest` exists."""
    if dest.exists():
        raise PackageExists(
            f"{dest}: a package already exists there; packages are immutable, use a new version"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    try:
        build(staging)
        validate(staging)
        for file in staging.iterdir():
            file.chmod(0o444)
        if dest.exists():  # checked again: another writer may have published while we built
            raise PackageExists(f"{dest}: a package already exists there; packages are immutable")
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def _entry(role: str, parity: Parity, models: TrainedModels) -> ModelEntry:
    columns = ", ".join(models.schema.names + action_columns(models.actions))
    width = models.n_inputs
    model_input = TensorSpec(
        name=INPUT_NAME, dtype="float32", shape=[None, width], meaning=f"columns: {columns}"
    )
    if role == "response":
        outputs = [
            TensorSpec(
                name="label", dtype="int64", shape=[None], meaning="1 where P(convert) > 0.5 (unused)"
            ),
            TensorSpec(
                name=RESPONSE_OUTPUT,
                dtype="float32",
                shape=[None, 2],
                meaning="column 1: P(convert | features, action); column 0: 1 - that",
            ),
        ]
        rule = "absolute"
    else:
        outputs = [
            TensorSpec(
                name=VALUE_OUTPUT,
                dtype="float32",
                shape=[None, 1],
                meaning="E[value | converted, features, action]",
            )
        ]
        rule = "relative to max(1, mean |value|)"
    return ModelEntry.model_validate(
        {
            "role": role,
            "file": f"{role}.onnx",
            "input": model_input,
            "outputs": outputs,
            "parity": ParityEntry.model_validate(
                {
                    "rows": parity.rows,
                    "output": parity.output,
                    "max_abs_diff": parity.max_abs_diff,
                    "tolerance": parity.tolerance,
                    "rule": rule,
                }
            ),
        }
    )
