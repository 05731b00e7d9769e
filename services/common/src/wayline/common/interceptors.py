"""The server interceptor every service runs: authentication, request context, a trace span, one
access-log line and the RPC metrics per call, and the one mapping from exceptions to gRPC statuses.

gRPC calls `intercept_service` on its polling thread, so all per-call work happens inside the wrapped
behaviour, on the thread that runs the handler: that is where context variables must be bound.

Tracing is done here rather than with opentelemetry-instrumentation-grpc: that package formats a traceback
for every non-OK call and stacks two more interceptor layers on each hop, which measured as the largest
cost of a gateway hop (ADR 7). W3C trace context is extracted from the metadata and the span is ours.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import grpc
import structlog
from google.protobuf import descriptor
from opentelemetry import propagate, trace

from wayline.common.auth import Authenticator
from wayline.common.context import REQUEST_ID_HEADER, CallContext, bind_call, caller_timeout
from wayline.common.decoding import Undecodable, decoding
from wayline.common.errors import Unavailable, Unimplemented, WaylineError, to_status
from wayline.common.filter_budget import check_filter_budget, holds_filters
from wayline.common.grpc_types import ServerInterceptor
from wayline.common.telemetry import RpcMetrics

__all__ = ["UNGUARDED_PREFIXES", "CallInterceptor", "caller_request_id"]

# Health and reflection answer anyone, before the service is ready and without credentials.
UNGUARDED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Codes that mean the server failed (OpenTelemetry's RPC conventions); the others are the caller's doing.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

log = structlog.get_logger("wayline.rpc")
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class CallInterceptor(ServerInterceptor):
    def __init__(  # noqa: PLR0917 - one call site (the server bootstrap) and the tests
        self,
        service: str,
        authenticator: Authenticator,
        ready: threading.Event,
        rpc_metrics: RpcMetrics,
        tracer: trace.Tracer,
        public_methods: frozenset[str] = frozenset(),
    ) -> None:
        """`public_methods` (SCOPE_PUBLIC) are served without authentication and before the service is
        ready, with no tenant; the rest of the call (span, log line, metrics, error mapping) is the same."""
        self._service = service
        self._public = public_methods
        self._authenticator = authenticator
        self._ready = ready
        self._metrics = rpc_metrics
        self._tracer = tracer

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
        return _wrap_handler(handler, lambda context: self.observe(method, metadata, context))

    @contextmanager
    def observe(self, method: str, metadata: dict[str, str], context: grpc.ServicerContext) -> Iterator[None]:
        """Serve one call: span, context variables, authentication, status mapping, log line, metrics."""
        started = time.perf_counter()
        request_id = caller_request_id(metadata)
        code, reason = grpc.StatusCode.OK, ""
        with (
            self._tracer.start_as_current_span(
                method.lstrip("/"),
                context=propagate.extract(metadata),
                kind=trace.SpanKind.SERVER,
                record_exception=False,
                set_status_on_exception=False,
                attributes={"rpc.system": "grpc", "rpc.service": self._service, "rpc.method": method},
            ) as span,
            structlog.contextvars.bound_contextvars(method=method, request_id=request_id, tenant=""),
        ):
            try:
                call = self._open_call(method, request_id, metadata, context)
                structlog.contextvars.bind_contextvars(tenant=call.tenant)
                with bind_call(call):
                    yield
                code = _code(context) or grpc.StatusCode.OK
            except GeneratorExit:  # the caller went away while we were streaming to it
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                error = self._error_for(exc, method, request_id, context)
                if error is None:  # the handler chose the status itself (the gateway forwarding a backend's)
                    code = _code(context) or grpc.StatusCode.UNKNOWN
                    raise
                code, reason = error.code, error.reason
                context.abort_with_status(to_status(error, self._service))
            except BaseException:
                # SystemExit, KeyboardInterrupt: the process is being stopped, the call did not fail, so it
                # is no INTERNAL error and the exception is not ours to swallow. gRPC answers only
                # Exceptions, so the call is cancelled here; the caller would otherwise wait out its deadline.
                code = grpc.StatusCode.CANCELLED
                context.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave it untyped
                raise
            finally:
                self._record(span, method, code, reason, started)

    def _open_call(
        self, method: str, request_id: str, metadata: dict[str, str], context: grpc.ServicerContext
    ) -> CallContext:
        if method in self._public:
            remaining = caller_timeout(context)
            deadline = None if remaining is None else time.monotonic() + remaining
            return CallContext(request_id, method, "", frozenset(), deadline, "")
        if not self._ready.is_set():
            raise Unavailable(f"the {self._service} service is starting; retry shortly", retry_after=1.0)
        caller = self._authenticator.authenticate(method, metadata)
        remaining = caller_timeout(context)
        deadline = None if remaining is None else time.monotonic() + remaining
        return CallContext(request_id, method, caller.tenant, caller.scopes, deadline, caller.principal)

    def _error_for(
        self, exc: Exception, method: str, request_id: str, context: grpc.ServicerContext
    ) -> WaylineError | None:
        """The error to answer `exc` with; None when the handler already aborted with its own status."""
        if _code(context) not in (None, grpc.StatusCode.OK) and not isinstance(
            exc, WaylineError | NotImplementedError
        ):
            return None
        if isinstance(exc, NotImplementedError):
            return Unimplemented(f"{method.strip('/')} is part of the contract but not implemented yet")
        if isinstance(exc, WaylineError):
            return exc
        log.error("rpc.unhandled_exception", exc_info=exc)
        return WaylineError(f"internal error; quote request id {request_id} when reporting it")

    def _record(
        self, span: trace.Span, method: str, code: grpc.StatusCode, reason: str, started: float
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        attributes = {"rpc.service": self._service, "rpc.method": method, "rpc.grpc.status_code": code.name}
        self._metrics.duration_ms.record(latency_ms, attributes)
        self._metrics.requests.add(1, attributes)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            span.set_status(trace.StatusCode.ERROR, code.name)
        if reason:
            log.info("rpc", status=code.name, reason=reason, latency_ms=round(latency_ms, 3))
        else:
            log.info("rpc", status=code.name, latency_ms=round(latency_ms, 3))


def caller_request_id(metadata: Mapping[str, str]) -> str:
    """The caller's request id when it is a plain token (so a caller can correlate its own logs with ours),
    else a new one: whatever lands in our logs and downstream metadata stays short and printable."""
    offered = metadata.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status a handler set on its context (grpc-stubs predate `ServicerContext.code`)."""
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    return code


Observe = Callable[[grpc.ServicerContext], Any]


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], observe: Observe
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler`'s behaviour inside `observe`, its requests parsed by `decoding`'s deserializer: a request
    protobuf cannot parse is refused inside the call, where a streamed one is read (decoding.py); a unary
    request of a type that can hold property filters is held to their budget (filter_budget.py)."""
    deserializer, checked, streamed = _request_handling(handler.request_deserializer)

    def unary_response(behaviour: Behaviour, requests: Callable[[Any], Any]) -> Behaviour:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            with observe(context):
                return behaviour(requests(request), context)

        return serve

    def stream_response(behaviour: Behaviour, requests: Callable[[Any], Any]) -> Behaviour:
        def serve(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with observe(context):
                yield from behaviour(requests(request), context)

        return serve

    serializers = (deserializer, handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary, checked), *serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary, streamed), *serializers
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream, checked), *serializers
        )
    return grpc.stream_stream_rpc_method_handler(
        stream_response(handler.stream_stream, streamed),  # type: ignore[arg-type]
        *serializers,
    )


@cache
def _request_handling(
    given: Callable[[bytes], Any] | None,
) -> tuple[Callable[[bytes], Any] | None, Callable[[Any], Any], Callable[[Any], Any]]:
    """For a method's request deserializer: the one to parse with, what to do with a unary request, what with
    a stream of them. Made once per method (the interceptor wraps every call's handler)."""
    deserializer = decoding(given)
    decodes = deserializer is not given
    checked = _decoded if decodes else _unchanged
    message = getattr(getattr(given, "__self__", None), "DESCRIPTOR", None)
    if isinstance(message, descriptor.Descriptor) and holds_filters(message):
        checked = _within_filter_budget
    return deserializer, checked, _decoded_stream if decodes else _unchanged


def _unchanged(request: Any) -> Any:
    return request


def _decoded(request: Any) -> Any:
    """`request`, or its refusal raised when protobuf could not parse it."""
    if isinstance(request, Undecodable):
        raise request.error
    return request


def _within_filter_budget(request: Any) -> Any:
    """`_decoded`, then the request's property filters held to their budget."""
    parsed = _decoded(request)
    check_filter_budget(parsed)
    return parsed


def _decoded_stream(requests: Iterator[Any]) -> Iterator[Any]:
    """The streamed `requests`, the refusal of the first one protobuf could not parse raised where it is
    read."""
    for request in requests:
        yield _decoded(request)
