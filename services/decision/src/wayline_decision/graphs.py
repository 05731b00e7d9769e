"""One graph of a package against its manifest, in ONNX Runtime: it loads; its one input is float32 of shape
[-1, features + actions] under the manifest's name; it has the outputs the manifest declares, with their
types and shapes; the feature spec and action ids embedded in its metadata are the manifest's; and re-run
on its parity sample it gives the sample's expected outputs within the tolerance, by the rule.

The sample file is JSON `{"inputs": [[...], ...], "expected": [[...], ...]}` (NaN as null); `expected` holds
the rows of the output the parity check names, as the training library computed them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from google.protobuf import json_format

from wayline.common.errors import FieldViolation
from wayline.decision.v1 import model_package_pb2 as mp
from wayline.journeys.v1 import feature_pb2
from wayline_decision.packages import ACTIONS_KEY, FEATURE_SPEC_KEY

__all__ = ["graph_violations", "load_session"]

_TYPES = {mp.TENSOR_DATA_TYPE_FLOAT32: "tensor(float)", mp.TENSOR_DATA_TYPE_INT64: "tensor(int64)"}
_RULES = {mp.PARITY_RULE_ABSOLUTE: "ABSOLUTE", mp.PARITY_RULE_RELATIVE_TO_MEAN: "RELATIVE_TO_MEAN"}
Array = npt.NDArray[np.float64]


def load_session(model: bytes) -> ort.InferenceSession:
    """A single-threaded CPU session on a serialised graph. Loaded from bytes, not from a path, so that a
    graph cannot pull external data from files beside it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def graph_violations(
    directory: Path, model: mp.ModelFile, manifest: mp.ModelManifest
) -> list[FieldViolation]:
    """Every disagreement between the graph `model.file` and the manifest; the parity check only once the
    signature is right."""
    try:
        session = load_session((directory / model.file).read_bytes())
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own untyped errors; say which file
        return [FieldViolation(model.file, f"does not load in ONNX Runtime: {error}", "LOAD_FAILED")]
    violations = _input_violations(session, model, manifest)
    violations += _output_violations(session, model)
    violations += _metadata_violations(session, model.file, manifest)
    if violations:
        return violations
    return _parity_violations(session, directory, model)


def _dims(shape: list[Any]) -> list[int]:
    """ONNX Runtime's shape with every symbolic or unknown dimension as -1."""
    return [dim if isinstance(dim, int) and dim >= 0 else -1 for dim in shape]


def _input_violations(
    session: ort.InferenceSession, model: mp.ModelFile, manifest: mp.ModelManifest
) -> list[FieldViolation]:
    inputs = session.get_inputs()
    width = len(manifest.feature_spec.features) + len(manifest.action_ids)
    if len(inputs) != 1:
        return [
            FieldViolation(f"{model.file}:input", f"the graph has {len(inputs)} inputs; it must have one")
        ]
    found = inputs[0]
    if (found.name, found.type, _dims(found.shape)) != (model.input.name, "tensor(float)", [-1, width]):
        return [
            FieldViolation(
                f"{model.file}:input",
                f"the graph's input is {found.name!r} {found.type} {_dims(found.shape)}; the manifest needs "
                f"{model.input.name!r} tensor(float) [-1, {width}] ({len(manifest.feature_spec.features)} "
                f"features + {len(manifest.action_ids)} actions)",
                "SCHEMA_MISMATCH",
            )
        ]
    return []


def _output_violations(session: ort.InferenceSession, model: mp.ModelFile) -> list[FieldViolation]:
    outputs = {output.name: output for output in session.get_outputs()}
    violations = []
    for j, declared in enumerate(model.outputs):
        found = outputs.get(declared.name)
        where = f"{model.file}:outputs[{j}]"
        if found is None:
            violations.append(
                FieldViolation(where, f"the graph has no output {declared.name!r} (it has {sorted(outputs)})")
            )
            continue
        dims = _dims(found.shape)
        fits = len(dims) == len(declared.shape) and all(
            have in (want, -1) for have, want in zip(dims, declared.shape, strict=True)
        )
        if found.type != _TYPES.get(declared.data_type) or not fits:
            violations.append(
                FieldViolation(
                    where,
                    f"the graph's output {declared.name!r} is {found.type} {dims}; the manifest declares "
                    f"{_TYPES.get(declared.data_type, 'an unknown type')} {list(declared.shape)}",
                    "SCHEMA_MISMATCH",
                )
            )
    return violations


def _metadata_violations(
    session: ort.InferenceSession, file: str, manifest: mp.ModelManifest
) -> list[FieldViolation]:
    stamped: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)
    violations = []
    where = f"{file}:metadata.{FEATURE_SPEC_KEY}"
    spec = feature_pb2.FeatureSpec()
    try:
        json_format.Parse(stamped[FEATURE_SPEC_KEY], spec, ignore_unknown_fields=False)
    except KeyError:
        violations.append(FieldViolation(where, "the graph carries no feature spec", "SCHEMA_MISMATCH"))
    except json_format.ParseError as error:
        violations.append(FieldViolation(where, f"not the proto3 JSON of a FeatureSpec: {error}"))
    else:
        if spec != manifest.feature_spec:
            violations.append(
                FieldViolation(where, _spec_difference(spec, manifest.feature_spec), "SCHEMA_MISMATCH")
            )
    where = f"{file}:metadata.{ACTIONS_KEY}"
    try:
        actions = json.loads(stamped[ACTIONS_KEY])
    except KeyError:
        violations.append(FieldViolation(where, "the graph carries no action ids", "SCHEMA_MISMATCH"))
    except ValueError as error:
        violations.append(FieldViolation(where, f"not a JSON list of action ids: {error}"))
    else:
        if actions != list(manifest.action_ids):
            violations.append(
                FieldViolation(
                    where,
                    f"the graph was trained on actions {actions}, the manifest declares "
                    f"{list(manifest.action_ids)}",
                    "SCHEMA_MISMATCH",
                )
            )
    return violations


def _spec_difference(trained: feature_pb2.FeatureSpec, declared: feature_pb2.FeatureSpec) -> str:
    """Where the graph's feature spec and the manifest's part, in words."""
    for i, (was, now) in enumerate(zip(trained.features, declared.features, strict=False)):
        if was != now:
            return (
                f"the graph was trained with input column {i} = feature {was.name!r}; the manifest declares "
                f"{now.name!r}{'' if was.name != now.name else ' with another definition'}"
            )
    if len(trained.features) != len(declared.features):
        return (
            f"the graph was trained on {len(trained.features)} features, the manifest declares "
            f"{len(declared.features)}"
        )
    return (
        f"the graph was trained with spec {trained.name!r} version {trained.version!r}, the manifest "
        f"declares {declared.name!r} version {declared.version!r}"
    )


def _parity_violations(
    session: ort.InferenceSession, directory: Path, model: mp.ModelFile
) -> list[FieldViolation]:
    parity = model.parity
    width = int(model.input.shape[1])
    try:
        inputs, expected = _read_sample(directory / parity.sample_file, width)
    except ValueError as error:
        return [FieldViolation(parity.sample_file, str(error))]
    try:
        outputs = session.run([parity.output], {model.input.name: inputs.astype(np.float32)})
    except Exception as error:  # noqa: BLE001 - onnxruntime's own errors
        return [FieldViolation(f"{model.file}:parity", f"the graph fails on {parity.sample_file}: {error}")]
    actual = np.asarray(outputs[0], dtype=np.float64)
    if actual.ndim == 1:
        actual = actual.reshape(-1, 1)
    if actual.shape != expected.shape:
        return [
            FieldViolation(
                parity.sample_file,
                f"expected holds {list(expected.shape)} values; the graph's output {parity.output!r} gives "
                f"{list(actual.shape)} on these inputs",
            )
        ]
    allowed = parity.tolerance
    if parity.rule == mp.PARITY_RULE_RELATIVE_TO_MEAN:
        finite = np.abs(expected[np.isfinite(expected)])
        allowed *= max(1.0, float(finite.mean()) if finite.size else 0.0)
    same_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(same_nan, 0.0, np.abs(actual - expected))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    if not diff[worst] <= allowed:
        row, column = int(worst[0]), int(worst[1])
        return [
            FieldViolation(
                f"{model.file}:parity",
                f"re-run on {parity.sample_file}, output {parity.output!r} row {row} column {column} is "
                f"{actual[worst]!r} where the sample expects {expected[worst]!r}: a difference of "
                f"{diff[worst]:.3g}, above the {allowed:.3g} allowed ({_RULES[parity.rule]}, tolerance "
                f"{parity.tolerance})",
                "PARITY_FAILED",
            )
        ]
    return []


def _read_sample(path: Path, width: int) -> tuple[Array, Array]:
    """The sample's inputs and expected outputs; ValueError saying what is wrong with the file."""
    try:
        sample = json.loads(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(sample, dict) or set(sample) != {"inputs", "expected"}:
        raise ValueError('must be a JSON object with exactly "inputs" and "expected"')
    inputs = _matrix(sample["inputs"], "inputs")
    expected = _matrix(sample["expected"], "expected")
    if inputs.shape[1] != width:
        raise ValueError(f"inputs rows have {inputs.shape[1]} values; the graph's input has {width} columns")
    if inputs.shape[0] != expected.shape[0]:
        raise ValueError(f"{inputs.shape[0]} inputs rows but {expected.shape[0]} expected rows")
    return inputs, expected


def _matrix(rows: object, key: str) -> Array:
    """A non-empty list of equally long lists of numbers or nulls (NaN) as a float64 matrix."""
    if not isinstance(rows, list) or not rows or not all(isinstance(row, list) and row for row in rows):
        raise ValueError(f"{key} must be a non-empty list of non-empty rows")
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"{key} rows differ in length")
    for row in rows:
        for value in row:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{key} holds {value!r}; only numbers and null (NaN)")
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
