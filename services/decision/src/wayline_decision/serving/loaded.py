"""A registered model version loaded for serving: its package checked again, its two graphs in ONNX Runtime
sessions tuned for one row at a time, its feature spec compiled for the online state, warmed up.

Scoring a decision runs each graph once over one row per candidate action (the encoded features followed by
the action's one-hot, ACTION_ENCODING_ONE_HOT_AFTER_FEATURES). The rows are written into a preallocated
template: a copy of the features into the first columns and a gather of one-hot rows, no per-action Python.

Sessions: one intra-op and one inter-op thread, sequential execution, every graph optimisation. A request
is one tiny batch, so ORT's thread pool only adds wake-up latency; the service scales with processes
(measured in the issue: one thread per session and more processes beat ORT's default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from wayline.decision.v1 import model_package_pb2 as mp
from wayline_decision.features.model import CompiledSpec, FeatureValue
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.registry import RegisteredVersion
from wayline_decision.validation import ValidationLimits, validate_package

__all__ = ["Scores", "ServingModel", "load_version", "serving_session"]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]


def serving_session(model: bytes) -> ort.InferenceSession:
    """A CPU session for low-latency serving of small batches. Loaded from bytes, not from a path, so that
    a graph cannot pull external data from files beside it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True, slots=True)
class Scores:
    """The graphs' outputs for the actions asked, in the order asked."""

    propensity: Float64Array  # P(convert | features, action)
    value: Float64Array  # E[value | convert, features, action]


@dataclass(frozen=True, slots=True)
class _Graph:
    session: ort.InferenceSession
    input_name: str
    output_name: str
    column: int  # the output column that carries the graph's meaning

    def run(self, rows: Float32Array) -> Float64Array:
        output = self.session.run([self.output_name], {self.input_name: rows})[0]
        return np.asarray(output[:, self.column], dtype=np.float64)


class ServingModel:
    """One loaded version. Immutable once built and safe to share between threads (ONNX Runtime sessions
    may run concurrently)."""

    def __init__(self, tenant: str, version: RegisteredVersion, directory: Path) -> None:
        manifest = version.manifest
        self.tenant = tenant
        self.model_id = manifest.model_id
        self.version = manifest.version
        self.manifest = manifest
        self.digest = version.digest
        self.action_ids: tuple[str, ...] = tuple(manifest.action_ids)
        self.action_index: dict[str, int] = {action: i for i, action in enumerate(self.action_ids)}
        self.spec: CompiledSpec = compile_spec(manifest.feature_spec, "feature_spec.")
        self.feature_names: tuple[str, ...] = tuple(f.name for f in manifest.feature_spec.features)
        self.graph_bytes: dict[int, bytes] = {}  # by ModelRole: the raw graphs, for explainers and V2
        graphs: dict[int, _Graph] = {}
        for entry in manifest.models:
            data = (directory / entry.file).read_bytes()
            self.graph_bytes[entry.role] = data
            column = 1 if entry.role == mp.MODEL_ROLE_RESPONSE else 0
            graphs[entry.role] = _Graph(serving_session(data), entry.input.name, entry.parity.output, column)
        self._graphs = graphs
        self._response = graphs[mp.MODEL_ROLE_RESPONSE]
        self._value = graphs[mp.MODEL_ROLE_VALUE]
        width = len(self.feature_names)
        self.width = width + len(self.action_ids)
        self._one_hot = np.eye(len(self.action_ids), dtype=np.float32)
        self._features_width = width

    def session(self, role: int) -> ort.InferenceSession:
        """The ONNX Runtime session of the graph with `role` (a ModelRole), for raw calls (V2 inference);
        KeyError when the package has no such graph."""
        return self._graphs[role].session

    def encode(self, values: Sequence[FeatureValue]) -> Float32Array:
        """The features' model input, in spec order (missing → NaN, categories → codes)."""
        return np.asarray(self.spec.encoder.encode(values), dtype=np.float32)

    def rows(self, features: Float32Array, action_indexes: Sequence[int]) -> Float32Array:
        """The graphs' input: one row per action, the features then the action's one-hot."""
        rows = np.empty((len(action_indexes), self.width), dtype=np.float32)
        rows[:, : self._features_width] = features
        rows[:, self._features_width :] = self._one_hot[list(action_indexes)]
        return rows

    def score(self, features: Float32Array, action_indexes: Sequence[int]) -> Scores:
        """Both graphs' outputs for the actions at `action_indexes` (indexes into `action_ids`)."""
        if not action_indexes:
            empty = np.empty(0, dtype=np.float64)
            return Scores(empty, empty)
        rows = self.rows(features, action_indexes)
        return Scores(self._response.run(rows), self._value.run(rows))

    def warm_up(self, rounds: int = 20) -> None:
        """Run both graphs on varied rows, so that the first decisions do not pay ORT's lazy allocations."""
        generator = np.random.default_rng(0)
        indexes = list(range(len(self.action_ids)))
        for _ in range(rounds):
            features = generator.normal(size=self._features_width).astype(np.float32)
            self.score(features, indexes)


def load_version(
    tenant: str, version: RegisteredVersion, directory: Path, limits: ValidationLimits
) -> ServingModel:
    """Check the registered package again (every file's SHA-256, the manifest, each graph's signature and
    parity: a package may have been damaged on the volume since it was registered), load and warm it up.
    PackageInvalid when it no longer passes."""
    validate_package(directory, limits)
    model = ServingModel(tenant, version, directory)
    model.warm_up()
    return model
