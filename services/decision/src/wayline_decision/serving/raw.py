"""The loaded graphs as the Open Inference Protocol sees them: each deployed model is two V2 models, named
`{model_id}` (its response graph, P(convert)) and `{model_id}.value` (its value graph, E[value | convert]).
A V2 version is the package version; an empty version is the stable one. Only versions loaded on this
replica for the model's traffic (stable, canary, shadow) are served: V2 calls read what decisions read.

Model ids never hold a dot (packages.MODEL_ID_PATTERN), so the suffix cannot be confused with an id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from wayline.decision.v1 import model_package_pb2 as mp
from wayline_decision.errors import ModelNotLoaded, ServedModelNotFound
from wayline_decision.serving.loaded import ServingModel
from wayline_decision.serving.server import ModelServer

__all__ = ["DATATYPES", "VALUE_SUFFIX", "RawGraph", "RawModels", "TensorSpec"]

VALUE_SUFFIX = ".value"
PLATFORM = "onnxruntime_onnx"  # what Triton calls an ONNX Runtime model

# ONNX Runtime's tensor types → (V2 datatype, numpy dtype); graphs with other tensor types are not offered.
DATATYPES: Mapping[str, tuple[str, np.dtype[np.generic]]] = {
    "tensor(float)": ("FP32", np.dtype(np.float32)),
    "tensor(double)": ("FP64", np.dtype(np.float64)),
    "tensor(int64)": ("INT64", np.dtype(np.int64)),
    "tensor(int32)": ("INT32", np.dtype(np.int32)),
    "tensor(bool)": ("BOOL", np.dtype(np.bool_)),
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str  # V2's, e.g. FP32
    dtype: np.dtype[np.generic]
    shape: tuple[int, ...]  # -1 for a dimension of any size


def _specs(args: Sequence[ort.NodeArg]) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        if arg.type not in DATATYPES:
            continue  # a sequence or map output (ZipMap): not a tensor V2 can carry
        datatype, dtype = DATATYPES[arg.type]
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
        specs.append(TensorSpec(arg.name, datatype, dtype, shape))
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class RawGraph:
    """One graph of one loaded version, as a V2 model."""

    name: str
    version: str
    session: ort.InferenceSession
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def of(cls, name: str, model: ServingModel, role: int) -> RawGraph:
        session = model.session(role)
        return cls(name, model.version, session, _specs(session.get_inputs()), _specs(session.get_outputs()))

    def run(
        self, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> list[npt.NDArray[np.generic]]:
        """The graph's `outputs` for `inputs` (already checked against `self.inputs`)."""
        return list(self.session.run(list(outputs), dict(inputs)))


class RawModels:
    def __init__(self, server: ModelServer) -> None:
        self._server = server

    def _split(self, name: str) -> tuple[str, int]:
        if name.endswith(VALUE_SUFFIX):
            return name.removesuffix(VALUE_SUFFIX), mp.MODEL_ROLE_VALUE
        return name, mp.MODEL_ROLE_RESPONSE

    def versions(self, tenant: str, name: str) -> list[str]:
        """The versions served under `name`, the stable one first; empty when none is."""
        model_id, _ = self._split(name)
        deployment = self._server.deployment(tenant, model_id)
        return [m.version for m in deployment.models()] if deployment is not None else []

    def graph(self, tenant: str, name: str, version: str) -> RawGraph:
        """ServedModelNotFound when nothing is served under the name and version; ModelNotLoaded when the
        stable version is deployed but not loaded here."""
        model_id, role = self._split(name)
        deployment = self._server.deployment(tenant, model_id)
        if deployment is None:
            raise ServedModelNotFound(name, version)
        if not version:
            if deployment.stable is None:
                raise ModelNotLoaded(model_id, deployment.traffic.stable_version)
            return RawGraph.of(name, deployment.stable, role)
        for model in deployment.models():
            if model.version == version:
                return RawGraph.of(name, model, role)
        if version in deployment.traffic.versions():
            raise ModelNotLoaded(model_id, version)
        raise ServedModelNotFound(name, version)

    def ready(self, tenant: str, name: str, version: str) -> bool:
        try:
            self.graph(tenant, name, version)
        except (ServedModelNotFound, ModelNotLoaded):
            return False
        return True
