"""Writing a model package: a directory of `response.onnx`, `value.onnx`, a parity sample for each
(`response_parity.json`, `value_parity.json`), each graph's node covers for TreeSHAP (`response_covers.json`,
`value_covers.json`, see `wayline_ml.covers`), `model_card.md` and `manifest.json` (the contract's
ModelManifest).

Packages are immutable. A package is written whole into a staging directory beside its destination,
validated there, and renamed into place in one step, so a reader sees either no package or a complete one;
a destination that already exists is refused rather than overwritten, and the files are made read-only.
Each ONNX file carries the feature spec and action list it was trained with in its metadata, so a manifest
edited after the fact cannot silently re-label its inputs (`validate` compares the two).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from google.protobuf import timestamp_pb2

from wayline.decision.v1 import model_package_pb2 as mpb
from wayline_ml.covers import write_covers
from wayline_ml.design import action_columns
from wayline_ml.evaluate import Evaluation
from wayline_ml.export import INPUT_NAME, RESPONSE_OUTPUT, VALUE_OUTPUT, ExportedModels, Parity, opsets
from wayline_ml.feature_spec import spec_json
from wayline_ml.manifest import FORMAT_VERSION, MANIFEST_FILE, manifest_json
from wayline_ml.model_card import render_model_card
from wayline_ml.train import TrainedModels
from wayline_ml.validation import ACTIONS_KEY, FEATURE_SPEC_KEY, PackageError, sha256_file, validate

__all__ = ["MODEL_CARD_FILE", "PackageExists", "publish", "validate", "write_package"]

MODEL_CARD_FILE = "model_card.md"
POLICY = (
    "For each candidate action a: expected_value = response.probabilities[:, 1] * value.variable[:, 0] "
    "on the row [features..., one_hot(a)]; choose the action with the largest expected_value."
)
_LIBRARIES = ("xgboost-cpu", "onnx", "onnxmltools", "onnxruntime", "numpy", "wayline-ml")
_ROLES = {"response": mpb.MODEL_ROLE_RESPONSE, "value": mpb.MODEL_ROLE_VALUE}


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
) -> mpb.ModelManifest:
    """Write, validate and publish the package at `dest` (which must not exist); return its manifest."""
    spec = models.schema.spec

    def build(staging: Path) -> None:
        stamp = {FEATURE_SPEC_KEY: spec_json(spec), ACTIONS_KEY: json.dumps(list(models.actions))}
        for file, model in (("response.onnx", exported.response), ("value.onnx", exported.value)):
            onnx.helper.set_model_props(model, stamp)
            onnx.save(model, staging / file)
        for parity in exported.parity:
            _write_sample(staging / _sample_file(parity), parity)
        write_covers(staging / _cover_file("response"), models.response, exported.response)
        write_covers(staging / _cover_file("value"), models.value, exported.value)
        card = render_model_card(name, version, models, evaluation)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        manifest = mpb.ModelManifest(
            format_version=FORMAT_VERSION,
            model_id=name,
            version=version,
            create_time=_timestamp(created_at or datetime.now(tz=UTC)),
            feature_spec=spec,
            action_ids=models.actions,
            action_encoding=mpb.ACTION_ENCODING_ONE_HOT_AFTER_FEATURES,
            models=[_entry(parity, models) for parity in exported.parity],
            policy=POLICY,
            training_window=mpb.TrainingWindow(
                train_start_time=_timestamp_us(models.training_from_us),
                train_end_time=_timestamp_us(models.training_to_us),
                holdout_start_time=_timestamp_us(evaluation.holdout_from_us),
                holdout_end_time=_timestamp_us(evaluation.holdout_to_us),
            ),
            metrics=evaluation.summary(),
            files={p.name: sha256_file(p) for p in sorted(staging.iterdir())},
            onnx_opsets=opsets(exported.response) | opsets(exported.value),
            libraries={library: dist_version(library) for library in _LIBRARIES},
        )
        (staging / MANIFEST_FILE).write_text(manifest_json(manifest), encoding="utf-8")

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


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _timestamp_us(us: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def _sample_file(parity: Parity) -> str:
    return f"{parity.model}_parity.json"


def _cover_file(model: str) -> str:
    return f"{model}_covers.json"


def _write_sample(file: Path, parity: Parity) -> None:
    """The parity sample as JSON, NaN as null (JSON has no NaN)."""
    document = {"inputs": _rows(parity.sample_inputs), "expected": _rows(parity.sample_expected)}
    file.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")


def _rows(matrix: npt.NDArray[np.floating]) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in matrix.tolist()]


def _tensor(name: str, dtype: int, shape: list[int], meaning: str) -> mpb.TensorSpec:
    return mpb.TensorSpec(name=name, data_type=dtype, shape=shape, meaning=meaning)  # type: ignore[arg-type]


def _entry(parity: Parity, models: TrainedModels) -> mpb.ModelFile:
    columns = ", ".join(models.schema.names + action_columns(models.actions))
    model_input = _tensor(
        INPUT_NAME, mpb.TENSOR_DATA_TYPE_FLOAT32, [-1, models.n_inputs], f"columns: {columns}"
    )
    if parity.model == "response":
        outputs = [
            _tensor("label", mpb.TENSOR_DATA_TYPE_INT64, [-1], "1 where P(convert) > 0.5 (unused)"),
            _tensor(
                RESPONSE_OUTPUT,
                mpb.TENSOR_DATA_TYPE_FLOAT32,
                [-1, 2],
                "column 1: P(convert | features, action); column 0: 1 - that",
            ),
        ]
        rule = mpb.PARITY_RULE_ABSOLUTE
    else:
        outputs = [
            _tensor(
                VALUE_OUTPUT, mpb.TENSOR_DATA_TYPE_FLOAT32, [-1, 1], "E[value | converted, features, action]"
            )
        ]
        rule = mpb.PARITY_RULE_RELATIVE_TO_MEAN
    return mpb.ModelFile(
        role=_ROLES[parity.model],
        file=f"{parity.model}.onnx",
        input=model_input,
        outputs=outputs,
        parity=mpb.ParityCheck(
            rows=parity.rows,
            output=parity.output,
            max_abs_diff=parity.max_abs_diff,
            tolerance=parity.tolerance,
            rule=rule,
            sample_file=_sample_file(parity),
        ),
        cover_file=_cover_file(parity.model),
    )
