"""A gRPC server in front of one of our real servers: it forwards every unary call untouched (metadata, the
error, its message and its google.rpc details included) and notes the methods asked, so that a test can tell
how many calls a client made. Told to withhold a method, it answers UNIMPLEMENTED for it, as a server older
than the method does; nothing else about the backend is stood in for."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc

from wayline.common.grpc_types import GenericRpcHandler

__all__ = ["Relay"]


class Relay:
    """`asked`: the methods called (their last name), in order; `calls`: how many times each; `withheld`:
    the methods to answer UNIMPLEMENTED for. `address` is where to point the client."""

    def __init__(self, backend: str) -> None:
        self.asked: list[str] = []
        self.calls: Counter[str] = Counter()
        self.withheld: set[str] = set()
        self._channel = grpc.insecure_channel(backend)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((_Forward(self),))
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def clear(self) -> None:
        self.asked.clear()
        self.calls.clear()

    def forward(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        call = self._channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            answer: bytes = call(request, metadata=context.invocation_metadata(), timeout=60)
        except grpc.RpcError as error:
            context.abort_with_status(_Forwarded(error))  # type: ignore[arg-type]  # the error is the call
        return answer

    def close(self) -> None:
        self._server.stop(0)
        self._channel.close()


class _Forwarded(grpc.Status):
    def __init__(self, call: grpc.Call) -> None:
        self.code = call.code()
        self.details = call.details() or ""
        self.trailing_metadata = tuple(call.trailing_metadata() or ())


class _Forward(GenericRpcHandler):
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        method: str = details.method
        name = method.rsplit("/", 1)[-1]
        self._relay.asked.append(name)
        self._relay.calls[name] += 1
        if name in self._relay.withheld:
            return None  # gRPC answers UNIMPLEMENTED

        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self._relay.forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(answer)
