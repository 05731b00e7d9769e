"""Pass-through of public RPCs to the internal services, as raw bytes (no decode, no re-encode).

Each call passes the quotas first (admission.py). The caller's deadline is kept, given a default when it has
none and cut to the maximum; the backend sees the
authenticated tenant and the request id (added by the kit's channel interceptor), never the caller's own
metadata. A backend's status and its `google.rpc` details reach the caller unchanged; a backend that cannot
be reached, or that cancelled the call because it was shutting down, becomes UNAVAILABLE with a retry delay.

Bidirectional streams (StreamEvents) stay open for as long as their client likes; on SIGTERM `drain` ends
them, so that they do not hold the gateway's shutdown for its whole grace: the backend call is cancelled
and the client gets UNAVAILABLE (reason SHUTTING_DOWN) and sends what was not acknowledged on a new stream.

After an erasing RPC (routes.ERASING_METHODS), whatever its outcome, `on_erasure` is told the tenant: the HTTP
bridge's kept answers of that tenant are dropped (ADR 73).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn, TypeAlias, cast

import grpc

from wayline.common.context import caller_timeout, current_call
from wayline.common.errors import Unavailable
from wayline.common.grpc_types import GenericRpcHandler
from wayline_gateway.admission import Admission, PacedRequests
from wayline_gateway.routes import Route

__all__ = ["PassThroughHandler", "backend_unreachable", "backend_went_away"]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

Handler: TypeAlias = "grpc.RpcMethodHandler[bytes, bytes]"


class _ForwardedStatus(grpc.Status):
    """A backend's status as it came, trailers (and so its google.rpc details) included."""

    def __init__(self, call: grpc.Call) -> None:
        self.code = call.code()
        self.details = call.details() or ""
        self.trailing_metadata = tuple(call.trailing_metadata() or ())


def backend_went_away(code: grpc.StatusCode | None, caller_waiting: bool) -> bool:
    """True when a status without Wayline details means the backend could not take the call: it cannot be
    reached (UNAVAILABLE), or it cancelled the call while our caller is still waiting. A backend cancels
    calls only when its process stops: gRPC cancels the calls that reached a server just as it began to
    shut down, before any handler ran (grpc/grpc#41785), and the kit cancels a call interrupted by the
    process's exit. For our caller both are a backend that went away, which is UNAVAILABLE and retryable;
    CANCELLED would tell them that they cancelled, which they did not (ADR 49)."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    return code == grpc.StatusCode.CANCELLED and caller_waiting


def backend_unreachable(route: Route) -> Unavailable:
    """What the caller of a backend that went away is told: retryable, with a delay."""
    return Unavailable(
        f"the {route.backend} service cannot be reached; retry with backoff",
        retry_after=1.0,
        metadata={"backend": route.backend},
    )


def _answer_backend_error(
    route: Route, context: grpc.ServicerContext, raised: grpc.RpcError, requests: PacedRequests | None = None
) -> NoReturn:
    if requests is not None and requests.refusal is not None:
        raise requests.refusal from None  # our quota cut the stream, not the backend
    error = cast(grpc.Call, raised)  # every RpcError a channel raises is also its Call
    from_wayline = any(key == _STATUS_DETAILS_KEY for key, _ in error.trailing_metadata() or ())
    if not from_wayline and backend_went_away(error.code(), context.is_active()):
        raise backend_unreachable(route) from None
    context.abort_with_status(_ForwardedStatus(error))


def _shutting_down() -> Unavailable:
    return Unavailable(
        "the gateway is shutting down; send what was not acknowledged yet again on a new stream",
        reason="SHUTTING_DOWN",
        retry_after=1.0,
    )


class _OpenStreams:
    """The bidirectional backend calls in flight, to cancel when the gateway drains."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: set[grpc.Call] = set()
        self.draining = threading.Event()

    @contextmanager
    def tracking(self, call: grpc.Call) -> Iterator[None]:
        with self._lock:
            self._calls.add(call)
        if self.draining.is_set():  # opened as the drain began: ends like the others
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave it untyped
        try:
            yield
        finally:
            with self._lock:
                self._calls.discard(call)

    def drain(self) -> None:
        self.draining.set()
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave it untyped


class PassThroughHandler(GenericRpcHandler):
    def __init__(
        self,
        routes: Mapping[str, Route],
        channels: Mapping[str, grpc.Channel],
        default_deadline: float,
        max_deadline: float,
        admission: Admission,
        *,
        on_erasure: Callable[[str], None] | None = None,
    ) -> None:
        self._admission = admission
        self._on_erasure = on_erasure
        self._streams = _OpenStreams()
        self._default_deadline = default_deadline
        self._max_deadline = max_deadline
        self._handlers = {
            path: self._handler(route, channels[route.backend]) for path, route in routes.items()
        }

    def drain(self) -> None:
        """End the bidirectional streams in flight (each with UNAVAILABLE SHUTTING_DOWN)."""
        self._streams.drain()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        return self._handlers.get(handler_call_details.method)

    def _timeout(self, context: grpc.ServicerContext) -> float:
        remaining = caller_timeout(context)
        if remaining is None:
            return self._default_deadline
        return min(remaining, self._max_deadline)

    def _handler(self, route: Route, channel: grpc.Channel) -> Handler:
        method = route.method
        admission = self._admission
        raw = {"request_serializer": None, "response_deserializer": None}
        if route.client_streaming and route.server_streaming:
            stream_stream = channel.stream_stream(method, **raw)
            streams = self._streams

            def forward_stream_stream(
                requests: Iterator[bytes], context: grpc.ServicerContext
            ) -> Iterator[bytes]:
                with admission.streaming(route, requests) as paced:
                    call = stream_stream(paced, timeout=self._timeout(context))
                    try:
                        with streams.tracking(cast(grpc.Call, call)):
                            yield from call
                    except grpc.RpcError as error:
                        if streams.draining.is_set() and context.is_active():
                            raise _shutting_down() from None
                        _answer_backend_error(route, context, error, paced)

            return grpc.stream_stream_rpc_method_handler(forward_stream_stream)
        if route.client_streaming:
            stream_unary = channel.stream_unary(method, **raw)

            def forward_stream_unary(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
                with admission.streaming(route, requests) as paced:
                    try:
                        return cast(bytes, stream_unary(paced, timeout=self._timeout(context)))
                    except grpc.RpcError as error:
                        _answer_backend_error(route, context, error, paced)

            return grpc.stream_unary_rpc_method_handler(forward_stream_unary)
        if route.server_streaming:
            unary_stream = channel.unary_stream(method, **raw)

            def forward_unary_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
                with admission.unary(route, request):
                    try:
                        yield from unary_stream(request, timeout=self._timeout(context))
                    except grpc.RpcError as error:
                        _answer_backend_error(route, context, error)

            return grpc.unary_stream_rpc_method_handler(forward_unary_stream)
        unary_unary = channel.unary_unary(method, **raw)

        def forward_unary_unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            with admission.unary(route, request):
                try:
                    return cast(bytes, unary_unary(request, timeout=self._timeout(context)))
                except grpc.RpcError as error:
                    _answer_backend_error(route, context, error)

        on_erasure = self._on_erasure
        if on_erasure is None or not route.erases:
            return grpc.unary_unary_rpc_method_handler(forward_unary_unary)

        def forward_erasure(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return forward_unary_unary(request, context)
            finally:  # a timeout may hide a committed erasure: told whatever the outcome
                call = current_call()
                if call is not None and call.tenant:
                    on_erasure(call.tenant)

        return grpc.unary_unary_rpc_method_handler(forward_erasure)
