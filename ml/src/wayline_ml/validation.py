"""`validate(path)`: whether a model package directory is whole, untampered and loadable, or why not.

In order, each failure a `PackageError` that names the file and the problem:
1. `manifest.json` parses and matches `Manifest` (the first bad field is named);
2. the directory holds exactly the files the manifest lists, each with the listed sha256;
3. each ONNX file's embedded schema (the feature list and action list stamped into its metadata when it was
   packaged) equals the manifest's — a reordered feature list or a changed type fails here, since the input
   tensor alone cannot tell one float column from another;
4. each ONNX file has one float32 input of width features + actions and the outputs, dtypes and shapes the
   manifest's output semantics promise;
5. one inference on a zero row runs and returns those shapes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from pydantic import ValidationError

from wayline_ml.export import session
from wayline_ml.manifest import MANIFEST_FILE, Manifest, ModelEntry, TensorSpec

__all__ = ["ACTIONS_KEY", "FEATURES_KEY", "PackageError", "sha256_file", "validate"]

FEATURES_KEY = "wayline.features"
ACTIONS_KEY = "wayline.actions"
_DTYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


class PackageError(ValueError):
    """A model package fails validation; the message names the file (and field) at fault."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate(path: Path) -> Manifest:
    """Check the package at `path`; return its manifest or raise `PackageError`."""
    manifest = _read_manifest(path)
    _check_files(path, manifest)
    for entry in manifest.models:
        model = onnx.load(path / entry.file)
        _check_schema(entry.file, model, manifest)
        _check_signature(entry, model, manifest.input_width)
        _check_inference(entry, model, manifest.input_width)
    return manifest


def _read_manifest(path: Path) -> Manifest:
    file = path / MANIFEST_FILE
    if not file.is_file():
        raise PackageError(f"{path}: no {MANIFEST_FILE}")
    try:
        return Manifest.model_validate_json(file.read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise PackageError(f"{MANIFEST_FILE}: field {where}: {first['msg']}") from error


def _check_files(path: Path, manifest: Manifest) -> None:
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


def _check_schema(file: str, model: onnx.ModelProto, manifest: Manifest) -> None:
    stamped = {prop.key: prop.value for prop in model.metadata_props}
    if FEATURES_KEY not in stamped or ACTIONS_KEY not in stamped:
        raise PackageError(f"{file}: no embedded feature schema ({FEATURES_KEY}, {ACTIONS_KEY})")
    trained = json.loads(stamped[FEATURES_KEY])
    declared = [feature.model_dump(mode="json") for feature in manifest.features]
    for index, (was, now) in enumerate(zip(trained, declared, strict=False)):
        if was != now:
            raise PackageError(
                f"{file}: feature schema mismatch at input column {index}: the model was trained on "
                f"{was['name']} ({was['type']}), the manifest declares {now['name']} ({now['type']})"
            )
    if len(trained) != len(declared):
        raise PackageError(
            f"{file}: feature schema mismatch: the model was trained on {len(trained)} features, "
            f"the manifest declares {len(declared)}"
        )
    if json.loads(stamped[ACTIONS_KEY]) != manifest.actions:
        raise PackageError(
            f"{file}: action list mismatch: the model was trained on {stamped[ACTIONS_KEY]}, "
            f"the manifest declares {manifest.actions}"
        )


def _shape(value: onnx.ValueInfoProto) -> list[int | None]:
    dims = value.type.tensor_type.shape.dim
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]


def _check_tensor(file: str, kind: str, actual: onnx.ValueInfoProto, spec: TensorSpec) -> None:
    dtype = _DTYPES.get(actual.type.tensor_type.elem_type, str(actual.type.tensor_type.elem_type))
    if (actual.name, dtype, _shape(actual)) != (spec.name, spec.dtype, spec.shape):
        raise PackageError(
            f"{file}: {kind} is {actual.name!r} {dtype} {_shape(actual)}, "
            f"the manifest declares {spec.name!r} {spec.dtype} {spec.shape}"
        )


def _check_signature(entry: ModelEntry, model: onnx.ModelProto, width: int) -> None:
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


def _check_inference(entry: ModelEntry, model: onnx.ModelProto, width: int) -> None:
    try:
        results = session(model).run(None, {entry.input.name: np.zeros((1, width), dtype=np.float32)})
    except Exception as error:  # onnxruntime raises its own untyped errors; say which file failed
        raise PackageError(f"{entry.file}: inference on a zero row failed: {error}") from error
    for result, spec in zip(results, entry.outputs, strict=True):
        expected = [1 if dim is None else dim for dim in spec.shape]
        if list(np.asarray(result).shape) != expected:
            raise PackageError(
                f"{entry.file}: output {spec.name!r} has shape {list(np.asarray(result).shape)} on one row, "
                f"the manifest declares {spec.shape}"
            )
