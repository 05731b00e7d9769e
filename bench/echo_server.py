"""Bare gRPC echo servers, the baselines: no interceptors, no health, no logging, no work.

`python -m bench.echo_server aio PORT` or `... threadpool PORT WORKERS`. Both answer any unary method by
returning the request bytes; the thread-pool one answers STREAM_METHOD (bidirectional) by returning every
request message of the stream.

`python -m bench.echo_server proxy PORT BACKEND`: the floor of a hop in Python, a bare thread-pool server (the
gateway's kind) that passes any unary call's bytes to BACKEND through a plain channel and its answer back;
no authentication, quotas, metadata, spans, logs or metrics.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from wayline.common.grpc_types import GenericRpcHandler

ECHO_METHOD = "/bench.Echo/Echo"
STREAM_METHOD = "/bench.Echo/Stream"


def _echo(request: bytes, context: object) -> bytes:
    return request


def _echo_stream(requests: Iterator[bytes], context: object) -> Iterator[bytes]:
    yield from requests


class _EchoHandler(GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        if details.method == STREAM_METHOD:
            return grpc.stream_stream_rpc_method_handler(_echo_stream)
        return grpc.unary_unary_rpc_method_handler(_echo)


async def _echo_async(request: bytes, context: object) -> bytes:
    return request


class _AsyncEchoHandler(GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        return grpc.unary_unary_rpc_method_handler(_echo_async)


async def serve_aio(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_AsyncEchoHandler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def serve_threadpool(port: int, workers: int) -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((_EchoHandler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve_proxy(port: int, backend: str, workers: int = 32) -> None:
    channel = grpc.insecure_channel(backend)

    class _Forward(GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
            forward = channel.unary_unary(details.method, request_serializer=None, response_deserializer=None)

            def answer(request: bytes, context: object) -> bytes:
                return forward(request, timeout=30)  # type: ignore[no-any-return]  # raw bytes in, bytes out

            return grpc.unary_unary_rpc_method_handler(answer)

    server = grpc.server(ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((_Forward(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "proxy":
        serve_proxy(port, sys.argv[3])
    elif kind == "aio":
        asyncio.run(serve_aio(port))
    else:
        serve_threadpool(port, int(sys.argv[3]) if len(sys.argv) > 3 else 32)
