"""`validate(path)`: whether a model package directory is whole, untampered and loadable, or why not.

The ML side's own check before a package leaves it (the decision service checks again, by the same contract,
before it accepts one). In order, each failure a `PackageError` that names the file and the problem:
1. `manifest.json` parses as the contract's ModelManifest and its fields agree (`read_manifest`);
2. the directory holds exactly the files the manifest lists, each with the listed sha256;
3. each ONNX file's embedded feature spec and action list (stamped into its metadata when it was packaged)
   equal the manifest's: a reordered feature list or a changed type fails here, since the input tensor
   alone cannot tell one float column from another;
4. each ONNX file has one float32 input of width features + actions and the outputs the manifest promises;
5. the graph, run on its parity sample, reproduces the training library's outputs within the tolerance.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx

from wayline.decision.v1 import model_package_pb2 as mpb
from wayline.journeys.v1 import feature_pb2
from wayline_ml.export import session
from wayline_ml.feature_spec import spec_from_json
from wayline_ml.manifest import MANIFEST_FILE, ManifestError, input_width, read_manifest

__all__ = ["ACTIONS_KEY", "FEATURE_SPEC_KEY", "PackageError", "read_sample", "sha256_file", "validate"]

FEATURE_SPEC_KEY = "wayline.feature_spec"
ACTIONS_KEY = "wayline.actions"
_DTYPES: dict[int, int] = {
    onnx.TensorProto.FLOAT: mpb.TENSOR_DATA_TYPE_FLOAT32,
    onnx.TensorProto.INT64: mpb.TENSOR_DATA_TYPE_INT64,
}


class PackageError(ValueError):
    """A model package fails validation; the message names the file (and field) at fault."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate(path: Path) -> mpb.ModelManifest:
    """Check the package at `path`; return its manifest or raise `PackageError`."""
    if not (path / MANIFEST_FILE).is_file():
        raise PackageError(f"{path}: no {MANIFEST_FILE}")
    try:
        manifest = read_manifest(path / MANIFEST_FILE)
    except ManifestError as error:
        raise PackageError(str(error)) from error
    _check_files(path, manifest)
    for entry in manifest.models:
        model = onnx.load(path / entry.file)
        _check_stamp(entry.file, model, manifest)
        _check_signature(entry, model, input_width(manifest))
        _check_parity(path, entry, model)
    return manifest


def read_sample(file: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """A parity sample's inputs (float32, NaN for null) and expected outputs (float64)."""
    document = json.loads(file.read_text(encoding="utf-8"))
    inputs = np.array(document["inputs"], dtype=np.float64)  # null → NaN
    return inputs.astype(np.float32), np.array(document["expected"], dtype=np.float64)


def _check_files(path: Path, manifest: mpb.ModelManifest) -> None:
    present = {p.name for p in path.iterdir() if p.name != MANIFEST_FILE}
    if missing := sorted(set(manifest.files) - present):
        raise PackageError(f"{missing[0]}: listed in {MANIFEST_FILE} but missing from the package")
    if extra := sorted(present - set(manifest.files)):
        raise PackageError(f"{extra[0]}: in the package but not listed in {MANIFEST_FILE}")
    for name, expected in sorted(manifest.files.items()):
        actual = sha256_file(path / name)
        if actual != expected:
            raise PackageError(
                f"{name}: sha256 mismatch: the manifest lists {expected}, the file has {actual}"
            )


def _check_stamp(file: str, model: onnx.ModelProto, manifest: mpb.ModelManifest) -> None:
    stamped = {prop.key: prop.value for prop in model.metadata_props}
    if FEATURE_SPEC_KEY not in stamped or ACTIONS_KEY not in stamped:
        raise PackageError(f"{file}: no embedded feature spec ({FEATURE_SPEC_KEY}, {ACTIONS_KEY})")
    trained = spec_from_json(stamped[FEATURE_SPEC_KEY]).features
    declared = manifest.feature_spec.features
    for index, (was, now) in enumerate(zip(trained, declared, strict=False)):
        if was != now:
            raise PackageError(
                f"{file}: feature spec mismatch at input column {index}: the model was trained on "
                f"{_describe(was)}, the manifest declares {_describe(now)}"
            )
    if len(trained) != len(declared):
        raise PackageError(
            f"{file}: feature spec mismatch: the model was trained on {len(trained)} features, "
            f"the manifest declares {len(declared)}"
        )
    if json.loads(stamped[ACTIONS_KEY]) != list(manifest.action_ids):
        raise PackageError(
            f"{file}: action list mismatch: the model was trained on {stamped[ACTIONS_KEY]}, "
            f"the manifest declares {list(manifest.action_ids)}"
        )


def _describe(feature: feature_pb2.FeatureDefinition) -> str:
    kind = feature_pb2.FeatureAggregation.Name(feature.aggregation).removeprefix("FEATURE_AGGREGATION_")
    value_type = feature_pb2.FeatureValueType.Name(feature.value_type).removeprefix("FEATURE_VALUE_TYPE_")
    return f"{feature.name} ({kind.lower()}, {value_type.lower()})"


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    dims = value.type.tensor_type.shape.dim
    return [dim.dim_value if dim.HasField("dim_value") else -1 for dim in dims]


def _check_tensor(file: str, kind: str, actual: onnx.ValueInfoProto, spec: mpb.TensorSpec) -> None:
    dtype = mpb.TensorDataType.ValueType(
        _DTYPES.get(actual.type.tensor_type.elem_type, mpb.TENSOR_DATA_TYPE_UNSPECIFIED)
    )
    if (actual.name, dtype, _shape(actual)) != (spec.name, spec.data_type, list(spec.shape)):
        raise PackageError(
            f"{file}: {kind} is {actual.name!r} {mpb.TensorDataType.Name(dtype)} {_shape(actual)}, the "
            f"manifest declares {spec.name!r} {mpb.TensorDataType.Name(spec.data_type)} {list(spec.shape)}"
        )


def _check_signature(entry: mpb.ModelFile, model: onnx.ModelProto, width: int) -> None:
    inputs, outputs = list(model.graph.input), list(model.graph.output)
    if len(inputs) != 1:
        raise PackageError(f"{entry.file}: has {len(inputs)} inputs, the manifest declares 1")
    if _shape(inputs[0])[1:] != [width]:
        raise PackageError(
            f"{entry.file}: input {inputs[0].name!r} has {_shape(inputs[0])[1:]} columns, the manifest's "
            f"features and actions give {width}"
        )
    _check_tensor(entry.file, "input", inputs[0], entry.input)
    if len(outputs) != len(entry.outputs):
        raise PackageError(
            f"{entry.file}: has {len(outputs)} outputs, the manifest declares {len(entry.outputs)}"
        )
    for actual, spec in zip(outputs, entry.outputs, strict=True):
        _check_tensor(entry.file, "output", actual, spec)


def _check_parity(path: Path, entry: mpb.ModelFile, model: onnx.ModelProto) -> None:
    check = entry.parity
    inputs, expected = read_sample(path / check.sample_file)
    try:
        results = session(model).run([check.output], {entry.input.name: inputs})
    except Exception as error:  # onnxruntime raises its own untyped errors; say which file failed
        raise PackageError(f"{entry.file}: inference on the parity sample failed: {error}") from error
    actual = np.asarray(results[0], dtype=np.float64)
    if actual.shape != expected.shape:
        raise PackageError(
            f"{check.sample_file}: expected {check.output!r} of shape {list(expected.shape)}, "
            f"{entry.file} gives {list(actual.shape)}"
        )
    scale = 1.0
    if check.rule == mpb.PARITY_RULE_RELATIVE_TO_MEAN:
        scale = max(1.0, float(np.abs(expected).mean()))
    worst = float(np.abs(actual - expected).max(initial=0.0)) / scale
    if not worst <= check.tolerance:
        raise PackageError(
            f"{entry.file}: parity sample {check.sample_file}: differs from the training library by "
            f"{worst:.3g}, tolerance {check.tolerance} ({mpb.ParityRule.Name(check.rule)})"
        )
