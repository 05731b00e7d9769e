"""A registered model version loaded for serving: its package checked again, its two graphs in ONNX Runtime
sessions tuned for one row at a time, its feature spec compiled for the online state, warmed up.

Scoring a decision is one session run over one row per candidate action (the encoded features followed by
the action's one-hot, ACTION_ENCODING_ONE_HOT_AFTER_FEATURES): the response and value graphs are merged into
one graph at load (`merged.py`), output names are made once, and the rows are a copy of a preallocated
template (every action's one-hot, in order) with the features written into the first columns, no
per-action Python. With `MicroBatching`, concurrent calls share one run (`batching.py`).

Sessions: one intra-op and one inter-op thread, sequential execution, every graph optimisation. A request
is one tiny batch, so ORT's thread pool only adds wake-up latency; the service scales with processes
(measured in the issue: one thread per session and more processes beat ORT's default).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from wayline.decision.v1 import model_package_pb2 as mp
from wayline_decision.errors import ExplanationUnavailable
from wayline_decision.explain.cache import Explainers, NotExplainable
from wayline_decision.explain.treeshap import Explanation
from wayline_decision.features.model import CompiledSpec, FeatureValue
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.batching import MicroBatcher, RunRows
from wayline_decision.serving.merged import merge_graphs
from wayline_decision.validation import ValidationLimits, validate_package

__all__ = ["MicroBatching", "Scores", "ServingModel", "load_version", "serving_options", "serving_session"]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]


def serving_options() -> ort.SessionOptions:
    """Session options for low-latency serving of small batches (see the module's docstring)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def serving_session(model: bytes) -> ort.InferenceSession:
    """A CPU session for low-latency serving of small batches. Loaded from bytes, not from a path, so that
    a graph cannot pull external data from files beside it."""
    return ort.InferenceSession(model, serving_options(), providers=["CPUExecutionProvider"])


@dataclass(frozen=True, slots=True)
class Scores:
    """The graphs' outputs for the actions asked, in the order asked."""

    propensity: Float64Array  # P(convert | features, action)
    value: Float64Array  # E[value | convert, features, action]


@dataclass(frozen=True, slots=True)
class MicroBatching:
    """Coalesce concurrent score() calls into one session run (`serving/batching.py`)."""

    window_s: float  # how long the call that opens a batch waits for others to join
    max_rows: int  # a batch this large runs at once


class _Scorer:
    """Both graphs merged into one session (`merged.py`): one run per decision, output names made once."""

    def __init__(
        self, response: mp.ModelFile, response_graph: bytes, value: mp.ModelFile, value_graph: bytes
    ):
        merged, value_output = merge_graphs(
            response_graph, response.parity.output, value_graph, value.parity.output, response.input.name
        )
        self.session = serving_session(merged)
        self.input_name = response.input.name
        self.outputs = [response.parity.output, value_output]

    def run(self, rows: Float32Array) -> tuple[Float64Array, Float64Array]:
        probabilities, values = self.session.run(self.outputs, {self.input_name: rows})
        return probabilities[:, 1].astype(np.float64), values[:, 0].astype(np.float64)


class ServingModel:
    """One loaded version. Immutable once built and safe to share between threads (ONNX Runtime sessions
    may run concurrently)."""

    def __init__(
        self,
        tenant: str,
        version: RegisteredVersion,
        directory: Path,
        batching: MicroBatching | None = None,
    ) -> None:
        manifest = version.manifest
        self.tenant = tenant
        self.model_id = manifest.model_id
        self.version = manifest.version
        self.manifest = manifest
        self.digest = version.digest
        self.action_ids: tuple[str, ...] = tuple(manifest.action_ids)
        self.action_index: dict[str, int] = {action: i for i, action in enumerate(self.action_ids)}
        # A registered version's spec, checked at its upload: one registered before MATCHES_REGEX patterns
        # were checked with RE2 keeps such a pattern, its filter holding for no event (ADR 78).
        self.spec: CompiledSpec = compile_spec(manifest.feature_spec, "feature_spec.", stored=True)
        self.feature_names: tuple[str, ...] = tuple(f.name for f in manifest.feature_spec.features)
        self.graph_bytes: dict[int, bytes] = {}  # by ModelRole: the raw graphs, for explainers and V2
        covers: dict[int, bytes] = {}
        entries = {entry.role: entry for entry in manifest.models}
        for entry in manifest.models:
            self.graph_bytes[entry.role] = (directory / entry.file).read_bytes()
            if entry.cover_file:
                covers[entry.role] = (directory / entry.cover_file).read_bytes()
        self._scorer = _Scorer(
            entries[mp.MODEL_ROLE_RESPONSE],
            self.graph_bytes[mp.MODEL_ROLE_RESPONSE],
            entries[mp.MODEL_ROLE_VALUE],
            self.graph_bytes[mp.MODEL_ROLE_VALUE],
        )
        self._run: RunRows = self._scorer.run
        self.batcher: MicroBatcher | None = None
        if batching is not None:
            self.batcher = MicroBatcher(
                self._scorer.run, window_s=batching.window_s, max_rows=batching.max_rows
            )
            self._run = self.batcher.run
        width = len(self.feature_names)
        self.width = width + len(self.action_ids)
        self._one_hot = np.eye(len(self.action_ids), dtype=np.float32)
        self._features_width = width
        self._all_actions = tuple(range(len(self.action_ids)))
        self._all_rows = np.zeros((len(self.action_ids), self.width), dtype=np.float32)
        self._all_rows[:, width:] = self._one_hot
        self._explainers = Explainers(self.graph_bytes, covers, self.width)
        self._raw_sessions: dict[int, ort.InferenceSession] = {}
        self._raw_lock = threading.Lock()

    def session(self, role: int) -> ort.InferenceSession:
        """The ONNX Runtime session of the graph with `role` (a ModelRole) alone, for raw calls (V2
        inference); KeyError when the package has no such graph. Decisions score on the merged session;
        these are made on the first raw call, so a model nobody calls raw costs no second copy."""
        with self._raw_lock:
            session = self._raw_sessions.get(role)
            if session is None:
                session = serving_session(self.graph_bytes[role])
                self._raw_sessions[role] = session
            return session

    def encode(self, values: Sequence[FeatureValue]) -> Float32Array:
        """The features' model input, in spec order (missing → NaN, categories → codes)."""
        return np.asarray(self.spec.encoder.encode(values), dtype=np.float32)

    def rows(self, features: Float32Array, action_indexes: Sequence[int]) -> Float32Array:
        """The graphs' input: one row per action, the features then the action's one-hot."""
        if tuple(action_indexes) == self._all_actions:  # the usual case: every candidate, in order
            rows = self._all_rows.copy()
        else:
            rows = np.empty((len(action_indexes), self.width), dtype=np.float32)
            rows[:, self._features_width :] = self._one_hot[np.asarray(action_indexes, dtype=np.intp)]
        rows[:, : self._features_width] = features
        return rows

    def score(self, features: Float32Array, action_indexes: Sequence[int]) -> Scores:
        """Both graphs' outputs for the actions at `action_indexes` (indexes into `action_ids`)."""
        if not action_indexes:
            empty = np.empty(0, dtype=np.float64)
            return Scores(empty, empty)
        return Scores(*self._run(self.rows(features, action_indexes)))

    def close(self) -> None:
        """Stop batching (a version being unloaded): leaders waiting for company run at once, later calls
        run alone. Scoring keeps working; without batching this does nothing."""
        if self.batcher is not None:
            self.batcher.close()

    def explain(
        self, features: Float32Array, action_index: int, role: int = mp.MODEL_ROLE_RESPONSE
    ) -> Explanation:
        """Exact TreeSHAP of one graph (the response graph's log-odds by default) on the row of `features`
        under the action at `action_index`: one contribution per input column (the features, then the
        actions' one-hot columns) and the base value, summing to the graph's margin for that row. The
        explainer is built on the first call and kept; ExplanationUnavailable when the package cannot be
        explained."""
        try:
            explainer = self._explainers.get(role)
        except NotExplainable as error:
            raise ExplanationUnavailable(self.model_id, self.version, str(error)) from None
        return explainer.explain(self.rows(features, [action_index])[0])

    def warm_up(self, rounds: int = 20) -> None:
        """Run both graphs on varied rows, so that the first decisions do not pay ORT's lazy allocations."""
        generator = np.random.default_rng(0)
        indexes = list(range(len(self.action_ids)))
        for _ in range(rounds):
            features = generator.normal(size=self._features_width).astype(np.float32)
            self._scorer.run(self.rows(features, indexes))  # the session itself, never a batch window


def load_version(
    tenant: str,
    version: RegisteredVersion,
    directory: Path,
    limits: ValidationLimits,
    *,
    batching: MicroBatching | None = None,
) -> ServingModel:
    """Check the registered package again (every file's SHA-256, the manifest, each graph's signature and
    parity: a package may have been damaged on the volume since it was registered), load and warm it up.
    PackageInvalid when it no longer passes. Its spec is checked as when it was registered (`stored`): a
    check added since does not unload a version that served (ADR 78)."""
    validate_package(directory, limits, stored=True)
    model = ServingModel(tenant, version, directory, batching)
    model.warm_up()
    return model
