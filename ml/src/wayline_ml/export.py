"""XGBoost → ONNX with onnxmltools, and the parity check that makes an exported model trustworthy.

Each booster becomes one ONNX graph with one float32 input, `features`, of shape [N, features + actions] (the
design matrix of `wayline_ml.design`). The response model's graph has two outputs, `label` [N] (int64) and
`probabilities` [N, 2]; column 1 of `probabilities` is P(convert), and it is the output held to parity. The
value model's graph has one output, `variable` [N, 1].

Parity runs both the booster and onnxruntime on the held-out rows under every action. Probabilities must agree
within 1e-5 absolutely. Values are money: a prediction is the sum of hundreds of float32 tree leaves of the
magnitude of the values themselves, so float32 rounding grows with the output's scale even where one row's sum
comes out near zero. They must agree within 1e-5 relative to max(1, the mean |value| of the compared rows);
both rules are in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import xgboost as xgb
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

from wayline_ml.design import candidate_matrix
from wayline_ml.train import TrainedModels

__all__ = [
    "INPUT_NAME",
    "PARITY_TOLERANCE",
    "RESPONSE_OUTPUT",
    "SAMPLE_ROWS",
    "VALUE_OUTPUT",
    "ExportedModels",
    "Parity",
    "ParityError",
    "check_parity",
    "export_models",
    "opsets",
    "session",
    "to_onnx",
]

INPUT_NAME = "features"
RESPONSE_OUTPUT = "probabilities"
VALUE_OUTPUT = "variable"
PARITY_TOLERANCE = 1e-5
SAMPLE_ROWS = 64


class ParityError(AssertionError):
    """The ONNX model's outputs differ from XGBoost's by more than the tolerance."""


@dataclass(frozen=True, slots=True)
class Parity:
    model: str  # "response" or "value"
    output: str  # the ONNX output compared
    rows: int
    max_abs_diff: float
    max_scaled_diff: float  # the difference the tolerance applies to (absolute or relative, see above)
    tolerance: float
    sample_inputs: npt.NDArray[np.float32]  # a spread of the compared rows, for a loader to check again
    sample_expected: npt.NDArray[np.float64]  # XGBoost's values of `output` on them, in its full shape


@dataclass(frozen=True, slots=True)
class ExportedModels:
    response: onnx.ModelProto
    value: onnx.ModelProto
    parity: tuple[Parity, ...]


def to_onnx(booster: xgb.Booster, n_inputs: int) -> onnx.ModelProto:
    """One booster as an ONNX graph with the `features` input of width `n_inputs`."""
    model: onnx.ModelProto = convert_xgboost(
        booster, initial_types=[(INPUT_NAME, FloatTensorType([None, n_inputs]))]
    )
    onnx.checker.check_model(model)
    return model


def opsets(model: onnx.ModelProto) -> dict[str, int]:
    """Opset version per domain ("" is the default ONNX domain, "ai.onnx.ml" holds the tree ensembles)."""
    return {entry.domain: int(entry.version) for entry in model.opset_import}


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """A single-threaded CPU session (predictable in tests and benchmarks alike)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def check_parity(
    booster: xgb.Booster, model: onnx.ModelProto, rows: npt.NDArray[np.float32], kind: str
) -> Parity:
    """Compare `model` with `booster` on `rows`; raise `ParityError` past the tolerance."""
    expected = booster.predict(xgb.DMatrix(rows)).astype(np.float64)
    outputs = session(model).run(None, {INPUT_NAME: rows})
    if kind == "response":
        output, actual = RESPONSE_OUTPUT, np.asarray(outputs[1], dtype=np.float64)[:, 1]
        scale = np.ones_like(expected)
    else:
        output, actual = VALUE_OUTPUT, np.asarray(outputs[0], dtype=np.float64)[:, 0]
        scale = np.full_like(expected, max(1.0, float(np.abs(expected).mean())))
    diff = np.abs(actual - expected)
    sample = np.unique(np.linspace(0, len(rows) - 1, min(SAMPLE_ROWS, len(rows))).astype(np.int64))
    full = np.column_stack([1.0 - expected, expected]) if kind == "response" else expected[:, None]
    parity = Parity(
        kind,
        output,
        len(rows),
        float(diff.max()),
        float((diff / scale).max()),
        PARITY_TOLERANCE,
        rows[sample],
        full[sample],
    )
    if not parity.max_scaled_diff <= PARITY_TOLERANCE:
        worst = int(np.argmax(diff / scale))
        raise ParityError(
            f"{kind} model: ONNX output {output!r} differs from XGBoost by {parity.max_scaled_diff:.3g} "
            f"(tolerance {PARITY_TOLERANCE}) at row {worst}: "
            f"onnx {actual[worst]!r}, xgboost {expected[worst]!r}"
        )
    return parity


def export_models(
    models: TrainedModels, holdout_features: npt.NDArray[np.float32], *, max_rows: int = 50_000
) -> ExportedModels:
    """Both boosters as ONNX, each held to parity on (up to `max_rows`) held-out rows under every action."""
    rows = candidate_matrix(holdout_features[:max_rows], len(models.actions))
    response = to_onnx(models.response, models.n_inputs)
    value = to_onnx(models.value, models.n_inputs)
    parity = (
        check_parity(models.response, response, rows, "response"),
        check_parity(models.value, value, rows, "value"),
    )
    return ExportedModels(response=response, value=value, parity=parity)
