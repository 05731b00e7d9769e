"""A refusal naming what the caller sent reaches the caller as itself, over a real socket: gRPC refuses
trailers past 8 KiB (at random between its soft and hard limits), and replaced the NOT_FOUND that echoed a
5,000-character flow id in ErrorInfo with RESOURCE_EXHAUSTED "Stream removed" in about half the calls."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.orchestrator.conftest import Auth
from wayline.common.errors import MAX_DETAIL_TEXT_BYTES, status_details
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc


def test_a_not_found_naming_a_long_flow_id_reaches_the_caller_as_not_found(
    stub: pb_grpc.OrchestratorServiceStub, tenant: Auth
) -> None:
    long_id = "1" * 5000
    for _ in range(12):
        with pytest.raises(grpc.RpcError) as raised:
            stub.ArchiveFlow(pb.ArchiveFlowRequest(name=f"flows/{long_id}"), metadata=tenant, timeout=10)
        error = raised.value
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
        (info,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)]
        assert info.metadata["flow"].startswith("flows/111")
        assert len(info.metadata["flow"].encode()) <= MAX_DETAIL_TEXT_BYTES
