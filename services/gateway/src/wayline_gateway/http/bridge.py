"""Every public unary RPC over HTTP/JSON, in the Connect protocol's unary form (ADR 51).

`POST /wayline.journeys.v1.JourneyService/QueryPaths` with `Content-Type: application/json`, the API key as
`Authorization: Bearer <key>` and the request message as proto3 JSON answers 200 with the response message
as proto3 JSON, or an error status with Connect's error body: `{"code": "not_found", "message": ...,
"details": [{"type": "google.rpc.ErrorInfo", "value": <base64>, "debug": {...}}]}`. Connect's own clients
(connect-es in a browser, connect-go, `buf curl`) and plain `fetch`/`curl` both speak it; the console calls
nothing else.

The call takes the gRPC route's path through the gateway, minus the socket: the same key check and scope
map (the authenticator), the same quotas (admission), the same route table and backend channels, and the
tenant bound as the kit's interceptor binds it, so the channel's interceptor sends exactly the metadata a
gRPC call would. A key therefore sees over HTTP exactly what it sees over gRPC, its own tenant's data.
Streaming RPCs stay gRPC-only (Connect's streaming framing is not served). Read-only RPCs may be answered
from recent answers when the caller accepts their age (`Cache-Control: max-stale`; answer_cache.py, ADR 58);
an erasure passing through the bridge drops its tenant's kept answers (ADR 73).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, cast

import grpc
import structlog
from google.protobuf import json_format, message_factory, symbol_database
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from wayline.common.auth import Authenticator
from wayline.common.context import CallContext, bind_call
from wayline.common.errors import (
    FieldViolation,
    InvalidArgument,
    Unimplemented,
    WaylineError,
    call_status,
    to_rpc_status,
)
from wayline.common.interceptors import caller_request_id
from wayline.common.json_messages import message_from_json, message_to_json
from wayline_gateway.admission import Admission
from wayline_gateway.http.answer_cache import AnswerCache, CacheKey, max_stale
from wayline_gateway.proxy import backend_unreachable, backend_went_away
from wayline_gateway.routes import Route

__all__ = ["BridgeReply", "JsonBridge", "answer_gone", "connect_error_body", "http_status"]

log = structlog.get_logger("wayline.gateway.bridge")

_SERVICE = "gateway"
_TIMEOUT_HEADER = "connect-timeout-ms"

# Connect's mapping of status codes to HTTP statuses (connectrpc.com/docs/protocol#error-codes).
_HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# A read failing with one of these says its kept answer is gone (erased, deleted) or no longer the caller's.
_GONE = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
)
_RAW: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}


@dataclass(frozen=True)
class BridgeReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Method:
    route: Route
    request: type[Message]
    response: type[Message]
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes]


def _is_json(content_type: str) -> bool:
    """`application/json`, with no charset or UTF-8's (the only one proto3 JSON allows)."""
    media, _, parameters = content_type.lower().partition(";")
    charset = parameters.strip().removeprefix("charset=").strip('" ')
    return media.strip() == "application/json" and charset in ("", "utf-8")


def http_status(code: grpc.StatusCode) -> int:
    return _HTTP_STATUS.get(code, 500)


def _detail_json(detail: Any) -> dict[str, Any]:
    """One `google.protobuf.Any` detail as Connect writes it: type name, base64 value, and its JSON form."""
    type_name = detail.type_url.rpartition("/")[2]
    entry: dict[str, Any] = {"type": type_name, "value": base64.b64encode(detail.value).decode().rstrip("=")}
    try:
        message = symbol_database.Default().GetSymbol(type_name)()
        detail.Unpack(message)
        entry["debug"] = message_to_json(message)
    except (KeyError, TypeError):  # a detail type this process does not know: value only
        pass
    return entry


def connect_error_body(status: status_pb2.Status) -> dict[str, Any]:
    """Connect's JSON error body for a `google.rpc.Status`."""
    code = _BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return {
        "code": code.name.lower(),
        "message": status.message,
        "details": [_detail_json(detail) for detail in status.details],
    }


def _retry_after(status: status_pb2.Status) -> dict[str, str]:
    """`Retry-After` (whole seconds, at least 1) from the status's RetryInfo: plain HTTP clients back off."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seconds = info.retry_delay.seconds + (1 if info.retry_delay.nanos else 0)
            return {"Retry-After": str(max(1, seconds))}
    return {}


def _error_reply(status: status_pb2.Status) -> BridgeReply:
    code = _BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return BridgeReply(http_status(code), connect_error_body(status), _retry_after(status))


def _wayline_error_reply(error: WaylineError) -> BridgeReply:
    return _error_reply(to_rpc_status(error, _SERVICE))


def answer_gone(error: BaseException) -> bool:
    """True when a backend's error means a kept answer of the same request must not be served again."""
    return isinstance(error, grpc.RpcError) and cast(grpc.Call, error).code() in _GONE


def _backend_status(error: grpc.RpcError, route: Route) -> status_pb2.Status:
    """The status a backend answered, its details included; a backend that could not be reached (or went away
    without a Wayline status) is UNAVAILABLE with a retry delay, as over gRPC (proxy.py)."""
    call = cast(grpc.Call, error)
    status = call_status(error)
    if status is not None:
        return status
    code = call.code()
    # The HTTP caller is still waiting (a backend's CANCELLED is never theirs).
    if backend_went_away(code, caller_waiting=True):
        return to_rpc_status(backend_unreachable(route), _SERVICE)
    return status_pb2.Status(code=code.value[0], message=call.details() or "")


class JsonBridge:
    """Answers one Connect unary JSON request. Blocking (it waits for the backend): run it in a worker
    thread. Thread-safe; one per process."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        channels: Mapping[str, grpc.Channel],
        authenticator: Authenticator,
        admission: Admission,
        *,
        default_deadline: float,
        max_deadline: float,
        cache: AnswerCache | None = None,
    ) -> None:
        """`cache` keeps the answers of the read-only (NO_SIDE_EFFECTS) methods for callers sending
        `max-stale`."""
        self._authenticator = authenticator
        self._cache = cache
        # Background refreshes: two at a time, so a burst of stale pages never floods the backends.
        self._refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bridge-refresh")
        self._admission = admission
        self._default_deadline = default_deadline
        self._max_deadline = max_deadline
        self._methods = {
            path: _Method(
                route,
                message_factory.GetMessageClass(route.descriptor.input_type),
                message_factory.GetMessageClass(route.descriptor.output_type),
                channels[route.backend].unary_unary(path, **_RAW),
            )
            for path, route in routes.items()
            if route.descriptor is not None and not route.client_streaming and not route.server_streaming
        }
        self._streaming = {path for path, route in routes.items() if path not in self._methods}

    @property
    def paths(self) -> frozenset[str]:
        """The paths this bridge answers (for route templates in metrics)."""
        return frozenset(self._methods)

    def handle(self, path: str, body: bytes, headers: Mapping[str, str]) -> BridgeReply:
        """Answer `POST path` with `body`; `headers` lower-cased (authorization, content-type, timeout)."""
        method = self._methods.get(path)
        try:
            if method is None:
                raise self._unknown(path)
            if not _is_json(headers.get("content-type", "")):
                return BridgeReply(
                    415,
                    {"code": "unimplemented", "message": "send the body as `Content-Type: application/json`"},
                    {"Accept-Post": "application/json"},
                )
            caller = self._authenticator.authenticate(path, headers)
            request = self._parse(method, body)
        except WaylineError as error:
            return _wayline_error_reply(error)
        timeout = self._timeout(headers.get(_TIMEOUT_HEADER, ""))
        call = CallContext(
            request_id=caller_request_id(headers),
            method=path,
            tenant=caller.tenant,
            scopes=caller.scopes,
            deadline=time.monotonic() + timeout,
            principal=caller.principal,
        )
        with (
            structlog.contextvars.bound_contextvars(
                method=path, request_id=call.request_id, tenant=call.tenant
            ),
            bind_call(call),
        ):
            try:
                if self._cache is None or not method.route.read_only:
                    answer, age = self._invoke_write(method, call.tenant, request, timeout), None
                else:
                    answer, age = self._through_cache(method, call, request, timeout, headers)
            except WaylineError as error:  # a quota refused the call
                return _wayline_error_reply(error)
            except grpc.RpcError as error:
                return _error_reply(_backend_status(error, method.route))
        extra = {} if age is None else {"Age": str(int(age))}
        return BridgeReply(200, message_to_json(method.response.FromString(answer)), extra)

    def _invoke(self, method: _Method, request: bytes, timeout: float) -> bytes:
        """The backend's answer through the route's quotas; raises WaylineError (a quota) or RpcError."""
        with self._admission.unary(method.route, request):
            return method.call(request, timeout=timeout)

    def _invoke_write(self, method: _Method, tenant: str, request: bytes, timeout: float) -> bytes:
        """A call that is not a cacheable read; after an erasure, whatever its outcome (a timeout may hide a
        committed one), the tenant's kept answers are dropped."""
        if self._cache is None or not method.route.erases:
            return self._invoke(method, request, timeout)
        try:
            return self._invoke(method, request, timeout)
        finally:
            self._cache.forget_tenant(tenant)

    def _through_cache(
        self, method: _Method, call: CallContext, request: bytes, timeout: float, headers: Mapping[str, str]
    ) -> tuple[bytes, float]:
        """A read's answer: a kept one within the caller's `max-stale` (refreshed in the background once it is
        old), else a new one, which is kept for the next caller."""
        cache = cast(AnswerCache, self._cache)
        key = (call.tenant, call.method, request)
        accepted = max_stale(headers.get("cache-control", ""))
        cached = cache.lookup(key, accepted) if accepted is not None else None
        if cached is None:
            computed = cache.compute(key, lambda: self._invoke(method, request, timeout), gone=answer_gone)
            return computed.answer, 0.0
        if cache.needs_refresh(cached) and not cache.refreshing(key):
            self._refresher.submit(self._refresh, method, call, key, request)
        return cached.answer, cached.age

    def _refresh(self, method: _Method, call: CallContext, key: CacheKey, request: bytes) -> None:
        """Compute a kept answer again, as its last caller, with the gateway's default deadline."""
        deadline = time.monotonic() + self._default_deadline
        with bind_call(replace(call, deadline=deadline)):
            try:
                cast(AnswerCache, self._cache).compute(
                    key, lambda: self._invoke(method, request, self._default_deadline), gone=answer_gone
                )
            # The kept answer stays, and the next caller retries, unless the error says it is gone (dropped).
            except (WaylineError, grpc.RpcError) as error:
                log.warning("bridge.refresh_failed", method=call.method, error=str(error))

    def close(self) -> None:
        self._refresher.shutdown(wait=False, cancel_futures=True)

    def _unknown(self, path: str) -> WaylineError:
        if path in self._streaming:
            return Unimplemented(
                f"{path.strip('/')} streams, which the JSON bridge does not serve; call it over gRPC",
                reason="STREAMING_OVER_HTTP",
            )
        return Unimplemented(
            f"no public unary RPC is named {path.strip('/')!r}; paths are /<package.Service>/<Method>",
            reason="UNKNOWN_METHOD",
        )

    @staticmethod
    def _parse(method: _Method, body: bytes) -> bytes:
        """The request as wire bytes (what the gRPC route forwards), refused with the parser's reason."""
        try:
            value = json.loads(body) if body.strip() else {}
        # RecursionError: nesting deeper than the decoder recurses, which no request message needs.
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise InvalidArgument(
                f"the body is not JSON: {error}", [FieldViolation("", "not JSON", "NOT_JSON")]
            ) from None
        if not isinstance(value, dict):  # `null`, `[]`, `5`: the JSON parser's TypeError, not a ParseError
            raise InvalidArgument(
                f"the body is not a {method.request.DESCRIPTOR.full_name}: a request is a JSON object",
                [FieldViolation("", "must be a JSON object", "INVALID_JSON_MESSAGE")],
            )
        try:
            # Deterministic bytes (map entries in key order): they are the answer cache's key.
            return message_from_json(value, method.request()).SerializeToString(deterministic=True)
        except (json_format.ParseError, DecodeError) as error:
            raise InvalidArgument(
                f"the body is not a valid {method.request.DESCRIPTOR.full_name}: {error}",
                [FieldViolation("", str(error), "INVALID_JSON_MESSAGE")],
            ) from None

    def _timeout(self, header: str) -> float:
        """Connect's `Connect-Timeout-Ms` (at most 10 digits), else the gateway's default; cut to its max."""
        if header.isascii() and header.isdigit() and len(header) <= 10:  # not `²`, which int() refuses
            return min(int(header) / 1000, self._max_deadline)
        return self._default_deadline
