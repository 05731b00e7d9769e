"""Calls of the flow RPCs for the tests: a Flow message from its proto3 JSON form, and create/get/update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask

from tests.orchestrator.helpers import Auth, Stub
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

__all__ = ["create", "flow", "get", "update"]


def flow(definition: dict[str, Any] | None = None, display_name: str = "A flow") -> flow_pb2.Flow:
    message = flow_pb2.Flow(display_name=display_name)
    if definition is not None:
        json_format.ParseDict(definition, message.definition)
    return message


def create(stub: Stub, auth: Auth, flow_id: str, message: flow_pb2.Flow) -> flow_pb2.Flow:
    return stub.CreateFlow(
        pb.CreateFlowRequest(flow_id=flow_id, flow=message), metadata=auth, timeout=10
    ).flow


def get(stub: Stub, auth: Auth, flow_id: str, version: int = 0) -> flow_pb2.Flow:
    request = pb.GetFlowRequest(name=f"flows/{flow_id}", version=version)
    return stub.GetFlow(request, metadata=auth, timeout=10).flow


def update(stub: Stub, auth: Auth, message: flow_pb2.Flow, *paths: str) -> flow_pb2.Flow:
    request = pb.UpdateFlowRequest(flow=message, update_mask=FieldMask(paths=list(paths)))
    return stub.UpdateFlow(request, metadata=auth, timeout=10).flow


def simulate_request(definition: dict[str, Any], start_us: int, end_us: int) -> pb.SimulateFlowRequest:
    """SimulateFlow of `definition` (its JSON form) over the events between the two times."""
    request = pb.SimulateFlowRequest(definition=json_format.ParseDict(definition, flow_pb2.FlowDefinition()))
    request.time_range.start.FromMicroseconds(start_us)
    request.time_range.end.FromMicroseconds(end_us)
    return request


def refused(call: Callable[[], object]) -> grpc.RpcError:
    """The error `call` fails with (it must fail)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value
