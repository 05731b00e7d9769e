"""Real model packages for the decision service's tests: two tiny XGBoost boosters (a response classifier and
a value regressor over features + a one-hot of the action) exported to ONNX with onnxmltools, stamped with
their feature spec and actions, with their parity samples, model card and manifest — the format
`wayline_decision.packages` reads. Never a mock: every graph is a real ONNX file ONNX Runtime runs.

Boosters are trained once per process (they are the slow part) and packages are written from them as often
as tests need, under any model id and version; `edit_manifest` and `restamp` break a package on purpose.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import xgboost as xgb
from google.protobuf import json_format
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

from wayline.decision.v1 import model_package_pb2 as mp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2

FEATURES = ("orders_30d", "revenue_90d", "days_since_last_visit")
ACTIONS = ("none", "discount_10", "free_shipping")
INPUT = "features"
TOLERANCE = 1e-5


def feature_spec(names: tuple[str, ...] = FEATURES) -> feature_pb2.FeatureSpec:
    aggregations = {
        "orders_30d": feature_pb2.FEATURE_AGGREGATION_COUNT,
        "revenue_90d": feature_pb2.FEATURE_AGGREGATION_SUM,
        "days_since_last_visit": feature_pb2.FEATURE_AGGREGATION_DAYS_SINCE_LAST,
    }
    spec = feature_pb2.FeatureSpec(name="nbo", version="1")
    for name in names:
        feature = spec.features.add(name=name, aggregation=aggregations[name])
        if name == "revenue_90d":
            feature.property = "properties.revenue"
    return spec


@dataclass(frozen=True)
class Graphs:
    response: bytes
    value: bytes
    sample: npt.NDArray[np.float32]


def _rows(n: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    features[rng.random(n) < 0.05, 1] = np.nan  # a few missing values, routed as learned
    action = rng.integers(0, len(ACTIONS), n)
    return np.hstack([features, np.eye(len(ACTIONS), dtype=np.float32)[action]])


@cache
def graphs() -> Graphs:
    """The two boosters as ONNX (unstamped), and held-out rows to check them on; trained once."""
    rows = _rows(400, seed=1)
    converts = ((rows[:, 0] + rows[:, len(FEATURES) + 1]) > 0.3).astype(np.float32)
    value = 20.0 + 15.0 * np.nan_to_num(rows[:, 1]) + 5.0 * rows[:, len(FEATURES) + 2]
    width = rows.shape[1]
    params = {"max_depth": 3, "nthread": 1, "seed": 0}
    response = xgb.train({**params, "objective": "binary:logistic"}, xgb.DMatrix(rows, label=converts), 8)
    regressor = xgb.train({**params, "objective": "reg:squarederror"}, xgb.DMatrix(rows, label=value), 8)
    types = [(INPUT, FloatTensorType([None, width]))]
    return Graphs(
        response=convert_xgboost(response, initial_types=types).SerializeToString(),
        value=convert_xgboost(regressor, initial_types=types).SerializeToString(),
        sample=_rows(20, seed=2),
    )


def stamp(graph: bytes, spec: feature_pb2.FeatureSpec, actions: tuple[str, ...]) -> bytes:
    """The graph with the feature spec and actions it was trained with in its ONNX metadata."""
    model = onnx.load_from_string(graph)
    del model.metadata_props[:]
    onnx.helper.set_model_props(
        model,
        {
            "wayline.feature_spec": json_format.MessageToJson(spec, indent=None),
            "wayline.actions": json.dumps(list(actions)),
        },
    )
    return model.SerializeToString()


def _json_rows(values: npt.NDArray[np.float64] | npt.NDArray[np.float32]) -> list[list[float | None]]:
    return [[None if math.isnan(float(v)) else float(v) for v in row] for row in values]


def parity_sample(graph: bytes, output: str, rows: npt.NDArray[np.float32]) -> bytes:
    """`{"inputs", "expected"}` with the graph's own outputs as the expected values (as exported, an ONNX
    graph and its booster agree within 1e-5; the graph is the reference here)."""
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    (result,) = session.run([output], {INPUT: rows})
    expected = np.asarray(result, dtype=np.float64)
    return json.dumps({"inputs": _json_rows(rows), "expected": _json_rows(expected)}).encode()


def _tensor(
    name: str, data_type: mp.TensorDataType.ValueType, shape: list[int], meaning: str
) -> mp.TensorSpec:
    return mp.TensorSpec(name=name, data_type=data_type, shape=shape, meaning=meaning)


def _model_file(role: mp.ModelRole.ValueType, file: str, width: int, sample_file: str) -> mp.ModelFile:
    float32, int64 = mp.TENSOR_DATA_TYPE_FLOAT32, mp.TENSOR_DATA_TYPE_INT64
    if role == mp.MODEL_ROLE_RESPONSE:
        outputs = [
            _tensor("label", int64, [-1], "1 where P(convert) > 0.5 (unused)"),
            _tensor("probabilities", float32, [-1, 2], "column 1: P(convert | features, action)"),
        ]
        output, rule = "probabilities", mp.PARITY_RULE_ABSOLUTE
    else:
        outputs = [_tensor("variable", float32, [-1, 1], "E[value | converted, features, action]")]
        output, rule = "variable", mp.PARITY_RULE_RELATIVE_TO_MEAN
    return mp.ModelFile(
        role=role,
        file=file,
        input=_tensor(INPUT, float32, [-1, width], "features in spec order, then one-hot of the action"),
        outputs=outputs,
        parity=mp.ParityCheck(
            rows=20, output=output, max_abs_diff=0.0, tolerance=TOLERANCE, rule=rule, sample_file=sample_file
        ),
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(directory: Path, manifest: mp.ModelManifest) -> None:
    (directory / "manifest.json").write_text(json_format.MessageToJson(manifest) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> mp.ModelManifest:
    return json_format.Parse((directory / "manifest.json").read_text(encoding="utf-8"), mp.ModelManifest())


def build_package(
    dest: Path,
    *,
    model_id: str = "next-best-offer",
    version: str = "1.0.0",
    card: str = "",
    spec: feature_pb2.FeatureSpec | None = None,
    actions: tuple[str, ...] = ACTIONS,
) -> Path:
    """A valid package at `dest` (created); `card` varies the content without changing the model."""
    spec = spec or feature_spec()
    built = graphs()
    dest.mkdir(parents=True)
    response, value = stamp(built.response, spec, actions), stamp(built.value, spec, actions)
    files = {
        "response.onnx": response,
        "value.onnx": value,
        "response_parity.json": parity_sample(response, "probabilities", built.sample),
        "value_parity.json": parity_sample(value, "variable", built.sample),
        "model_card.md": f"# {model_id} {version}\n\nA tiny test model.{card}\n".encode(),
    }
    for name, data in files.items():
        (dest / name).write_bytes(data)
    width = len(spec.features) + len(actions)
    manifest = mp.ModelManifest(
        format_version=1,
        model_id=model_id,
        version=version,
        feature_spec=spec,
        action_ids=actions,
        action_encoding=mp.ACTION_ENCODING_ONE_HOT_AFTER_FEATURES,
        models=[
            _model_file(mp.MODEL_ROLE_RESPONSE, "response.onnx", width, "response_parity.json"),
            _model_file(mp.MODEL_ROLE_VALUE, "value.onnx", width, "value_parity.json"),
        ],
        policy="expected_value = P(convert) * E[value | converted]; choose the largest",
        metrics={"auc": 0.81, "policy_value_snips": 3.2},
        files={name: sha256(data) for name, data in files.items()},
        onnx_opsets={o.domain: o.version for o in onnx.load_from_string(response).opset_import},
        libraries={"xgboost": xgb.__version__},
        labels={"revision": "test"},
        channels=[event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_EMAIL],
        placements=["home_hero"],
    )
    manifest.create_time.GetCurrentTime()
    write_manifest(dest, manifest)
    return dest


def edit_manifest(directory: Path, change: Callable[[mp.ModelManifest], None]) -> None:
    manifest = read_manifest(directory)
    change(manifest)
    write_manifest(directory, manifest)


def replace_file(directory: Path, name: str, data: bytes, *, relist: bool = True) -> None:
    """Write `data` as the package's `name`; with `relist`, the manifest lists its new SHA-256 (a package
    consistent with itself, wrong in another way); without, the file is corrupted."""
    path = directory / name
    path.write_bytes(data)
    if relist:
        edit_manifest(directory, lambda m: m.files.__setitem__(name, sha256(data)))
