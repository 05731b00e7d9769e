"""The server interceptor every service runs: authentication, request context, one access-log line and the
RPC metrics per call, and the one mapping from exceptions to gRPC statuses.

gRPC calls `intercept_service` on its polling thread, so all per-call work happens inside the wrapped
behaviour, on the thread that runs the handler: that is where the context variables must be bound.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
import structlog

from wayline.common.auth import Authenticator
from wayline.common.context import REQUEST_ID_HEADER, CallContext, bind_call
from wayline.common.errors import Unavailable, Unimplemented, WaylineError, to_status
from wayline.common.grpc_types import ServerInterceptor
from wayline.common.telemetry import RpcMetrics

__all__ = ["UNGUARDED_PREFIXES", "CallInterceptor"]

# Health and reflection answer anyone, before the service is ready and without credentials.
UNGUARDED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_NO_DEADLINE = 1e8  # grpc reports "no deadline" as a very distant one

log = structlog.get_logger("wayline.rpc")

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class CallInterceptor(ServerInterceptor):
    def __init__(
        self,
        service: str,
        authenticator: Authenticator,
        ready: threading.Event,
        rpc_metrics: RpcMetrics,
    ) -> None:
        self._service = service
        self._authenticator = authenticator
        self._ready = ready
        self._metrics = rpc_metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(UNGUARDED_PREFIXES):
            return handler
        metadata = {
            key: value
            for key, value in handler_call_details.invocation_metadata or ()
            if isinstance(value, str)
        }
        return _wrap_handler(handler, method, metadata, self)

    # -- per call ------------------------------------------------------------------------------------------

    def open_call(self, method: str, metadata: dict[str, str], context: grpc.ServicerContext) -> CallContext:
        if not self._ready.is_set():
            raise Unavailable(f"the {self._service} service is starting; retry shortly", retry_after=1.0)
        caller = self._authenticator.authenticate(method, metadata)
        remaining = context.time_remaining()
        deadline = None if remaining is None or remaining > _NO_DEADLINE else time.monotonic() + remaining
        return CallContext(
            request_id=metadata.get(REQUEST_ID_HEADER) or uuid.uuid4().hex,
            method=method,
            tenant=caller.tenant,
            scopes=caller.scopes,
            deadline=deadline,
        )

    def fail(
        self, exc: BaseException, method: str, context: grpc.ServicerContext, started: float
    ) -> NoReturn:
        """Answer the call with the status that `exc` stands for; always raises (gRPC's abort)."""
        aborted_by_handler = _code(context) not in (None, grpc.StatusCode.OK)
        if aborted_by_handler and not isinstance(exc, WaylineError | NotImplementedError):
            self.finish(method, _code(context), started)
            raise exc
        if isinstance(exc, NotImplementedError):
            exc = Unimplemented(f"{method.strip('/')} is part of the contract but not implemented yet")
        if isinstance(exc, WaylineError):
            error = exc
            log.info("rpc.error", reason=error.reason, message=error.message)
        else:
            log.exception("rpc.unhandled_exception")
            call = _current_request_id()
            error = WaylineError(f"internal error; quote request id {call} when reporting it")
        self.finish(method, error.code, started)
        context.abort_with_status(to_status(error, self._service))

    def finish(self, method: str, code: grpc.StatusCode | None, started: float) -> None:
        status = (code or grpc.StatusCode.OK).name
        latency_ms = (time.perf_counter() - started) * 1000
        attributes = {"rpc.service": self._service, "rpc.method": method, "rpc.grpc.status_code": status}
        self._metrics.duration_ms.record(latency_ms, attributes)
        self._metrics.requests.add(1, attributes)
        log.info("rpc", status=status, latency_ms=round(latency_ms, 3))


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status a handler set on its context (grpc-stubs predate `ServicerContext.code`)."""
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    return code


def _current_request_id() -> str:
    bound = structlog.contextvars.get_contextvars()
    return str(bound.get("request_id", "unknown"))


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    metadata: dict[str, str],
    interceptor: CallInterceptor,
) -> grpc.RpcMethodHandler[Any, Any]:
    def unary_response(behaviour: Behaviour) -> Behaviour:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            with structlog.contextvars.bound_contextvars(method=method):
                try:
                    call = interceptor.open_call(method, metadata, context)
                except Exception as exc:
                    interceptor.fail(exc, method, context, started)
                with (
                    bind_call(call),
                    structlog.contextvars.bound_contextvars(request_id=call.request_id, tenant=call.tenant),
                ):
                    try:
                        response = behaviour(request, context)
                    except Exception as exc:
                        interceptor.fail(exc, method, context, started)
                    interceptor.finish(method, _code(context), started)
                    return response

        return serve

    def stream_response(behaviour: Behaviour) -> Behaviour:
        def serve(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            with structlog.contextvars.bound_contextvars(method=method):
                try:
                    call = interceptor.open_call(method, metadata, context)
                except Exception as exc:
                    interceptor.fail(exc, method, context, started)
                with (
                    bind_call(call),
                    structlog.contextvars.bound_contextvars(request_id=call.request_id, tenant=call.tenant),
                ):
                    try:
                        yield from behaviour(request, context)
                    except Exception as exc:
                        interceptor.fail(exc, method, context, started)
                    interceptor.finish(method, _code(context), started)

        return serve

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary_response(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        stream_response(handler.stream_stream),  # type: ignore[arg-type]
        handler.request_deserializer,
        handler.response_serializer,
    )
