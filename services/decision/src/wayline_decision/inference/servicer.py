"""`inference.GRPCInferenceService` over gRPC: thin — convert, call serving/raw.py, convert back.

ServerLive and ServerReady need no key (their scope is SCOPE_PUBLIC: they reveal nothing, and inference
clients and load balancers call them bare); the others are scoped by the tenant in metadata like every call.
"""

from __future__ import annotations

import threading
from importlib import metadata

import grpc

from wayline.common.context import require_tenant
from wayline.inference.v2 import grpc_service_pb2 as v2
from wayline.inference.v2 import grpc_service_pb2_grpc as v2_grpc
from wayline_decision.inference.tensors import (
    infer_inputs,
    infer_response,
    requested_outputs,
    tensor_metadata,
)
from wayline_decision.serving.raw import PLATFORM, RawModels
from wayline_decision.serving.server import ModelServer

__all__ = ["InferenceServicer"]


class InferenceServicer(v2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, server: ModelServer, ready: threading.Event) -> None:
        self._models = RawModels(server)
        self._ready = ready

    def ServerLive(  # noqa: N802 - gRPC method names are the contract's
        self, request: v2.ServerLiveRequest, context: grpc.ServicerContext
    ) -> v2.ServerLiveResponse:
        return v2.ServerLiveResponse(live=True)

    def ServerReady(  # noqa: N802
        self, request: v2.ServerReadyRequest, context: grpc.ServicerContext
    ) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=self._ready.is_set())

    def ServerMetadata(  # noqa: N802
        self, request: v2.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> v2.ServerMetadataResponse:
        return v2.ServerMetadataResponse(
            name="wayline-decision", version=metadata.version("wayline-decision")
        )

    def ModelReady(  # noqa: N802
        self, request: v2.ModelReadyRequest, context: grpc.ServicerContext
    ) -> v2.ModelReadyResponse:
        return v2.ModelReadyResponse(
            ready=self._models.ready(require_tenant(), request.name, request.version)
        )

    def ModelMetadata(  # noqa: N802
        self, request: v2.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> v2.ModelMetadataResponse:
        tenant = require_tenant()
        graph = self._models.graph(tenant, request.name, request.version)
        return v2.ModelMetadataResponse(
            name=request.name,
            versions=self._models.versions(tenant, request.name),
            platform=PLATFORM,
            inputs=tensor_metadata(graph.inputs),
            outputs=tensor_metadata(graph.outputs),
        )

    def ModelInfer(  # noqa: N802
        self, request: v2.ModelInferRequest, context: grpc.ServicerContext
    ) -> v2.ModelInferResponse:
        graph = self._models.graph(require_tenant(), request.model_name, request.model_version)
        inputs = infer_inputs(graph, request)
        outputs = requested_outputs(graph, request)
        arrays = graph.run(inputs, [o.name for o in outputs])
        return infer_response(graph, request, outputs, arrays)
