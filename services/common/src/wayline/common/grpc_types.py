"""Base classes from grpc that grpc-stubs declares generic but the runtime does not: subclass these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

__all__ = [
    "GenericRpcHandler",
    "ServerInterceptor",
    "StreamStreamClientInterceptor",
    "StreamUnaryClientInterceptor",
    "UnaryStreamClientInterceptor",
    "UnaryUnaryClientInterceptor",
]

if TYPE_CHECKING:
    GenericRpcHandler = grpc.GenericRpcHandler[Any, Any]
    ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
    UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor[Any, Any]
    StreamUnaryClientInterceptor = grpc.StreamUnaryClientInterceptor[Any, Any]
    StreamStreamClientInterceptor = grpc.StreamStreamClientInterceptor[Any, Any]
else:
    GenericRpcHandler = grpc.GenericRpcHandler
    ServerInterceptor = grpc.ServerInterceptor
    UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor
    UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor
    StreamUnaryClientInterceptor = grpc.StreamUnaryClientInterceptor
    StreamStreamClientInterceptor = grpc.StreamStreamClientInterceptor
