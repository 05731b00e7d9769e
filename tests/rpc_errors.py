"""Reading a refused call's `google.rpc` details in tests: the ErrorInfo reason and the field violations."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from wayline.common.errors import status_details

__all__ = ["reason", "violations"]


def reason(error: grpc.RpcError) -> str:
    return str(next(d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)))


def violations(error: grpc.RpcError) -> dict[str, str]:
    return {
        v.field: v.description
        for d in status_details(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    }
