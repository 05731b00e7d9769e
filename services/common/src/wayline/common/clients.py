"""Channels from one service to another: internal token, request id, tenant, the remaining deadline and the
W3C trace context are passed on with every call, and idempotent methods are retried by gRPC itself. Each
unary call's time to its status is recorded as `rpc.client.duration` (the caller's view of a hop: the
callee's `rpc.server.duration` plus the network and queueing between them).

Which methods are safe to retry is read from the contract: methods whose proto declares
`option idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` get the retry policy, the rest are never retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import grpc
from google.protobuf import descriptor, descriptor_pb2
from opentelemetry import metrics, propagate

from wayline.common.context import (
    INTERNAL_TOKEN_HEADER,
    PRINCIPAL_HEADER,
    REQUEST_ID_HEADER,
    TENANT_HEADER,
    current_call,
    remaining_seconds,
)
from wayline.common.grpc_types import (
    StreamStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    UnaryUnaryClientInterceptor,
)
from wayline.common.guarded_channel import GuardedChannel
from wayline.common.tls import ChannelTls

__all__ = ["PropagatingInterceptor", "internal_channel", "retry_service_config"]

# Through the global meter provider: channels are made before and after the process's pipeline is configured.
_client_duration = metrics.get_meter("wayline.common").create_histogram(
    "rpc.client.duration",
    unit="ms",
    description="Time from sending a unary call to another service to its status, by method and status.",
)

_SAFE_TO_RETRY = (
    descriptor_pb2.MethodOptions.IDEMPOTENT,
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
)


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class PropagatingInterceptor(
    UnaryUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    StreamStreamClientInterceptor,
):
    """Adds the internal token and the current call's request id and tenant; caps the timeout at the
    current call's remaining deadline (DEADLINE_EXCEEDED at once when it has already passed)."""

    def __init__(self, internal_token: str | None) -> None:
        self._token = internal_token

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = list(details.metadata or ())
        present = {key for key, _ in metadata}
        if self._token and INTERNAL_TOKEN_HEADER not in present:
            metadata.append((INTERNAL_TOKEN_HEADER, self._token))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # W3C traceparent of the current span: the callee's span is its child
        metadata.extend(carrier.items())
        call = current_call()
        if call is not None:
            if REQUEST_ID_HEADER not in present:
                metadata.append((REQUEST_ID_HEADER, call.request_id))
            if call.tenant and TENANT_HEADER not in present:
                metadata.append((TENANT_HEADER, call.tenant))
            if call.principal and PRINCIPAL_HEADER not in present:
                metadata.append((PRINCIPAL_HEADER, call.principal))
        timeout = details.timeout
        remaining = remaining_seconds()
        if remaining is not None:
            timeout = remaining if timeout is None else min(timeout, remaining)
        return _CallDetails(
            details.method,
            timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        started = time.perf_counter()
        outcome = continuation(self._details(details), request)
        outcome.add_done_callback(lambda done: _record(details.method, started, done))
        return outcome

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        started = time.perf_counter()
        outcome = continuation(self._details(details), requests)
        outcome.add_done_callback(lambda done: _record(details.method, started, done))
        return outcome

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def _record(method: str, started: float, done: Any) -> None:
    """Record a finished unary call (`done` is its call object; a blocking call is finished already)."""
    code = done.code()
    _client_duration.record(
        (time.perf_counter() - started) * 1000,
        {"rpc.method": method, "rpc.grpc.status_code": code.name if code is not None else "UNKNOWN"},
    )


def retry_service_config(services: Iterable[descriptor.ServiceDescriptor]) -> dict[str, Any]:
    """A gRPC service config that retries UNAVAILABLE for the methods the contract marks safe to retry."""
    names = [
        {"service": service.full_name, "method": method.name}
        for service in services
        for method in service.methods
        if method.GetOptions().idempotency_level in _SAFE_TO_RETRY
    ]
    if not names:
        return {}
    return {
        "methodConfig": [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


def internal_channel(
    address: str,
    *,
    internal_token: str | None,
    services: Iterable[descriptor.ServiceDescriptor] = (),
    max_message_bytes: int = 16 * 1024 * 1024,
    tls: ChannelTls | None = None,
) -> grpc.Channel:
    """A channel to another Wayline service (or, with no token, to the gateway from outside); over TLS
    when `tls` is given (`wayline.common.tls.channel_tls(settings)`), else plaintext."""
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    config = retry_service_config(services)
    if config:
        options.append(("grpc.service_config", json.dumps(config)))
    if tls is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, tls.credentials(), options=[*options, *tls.options()])
    # Under the interceptors, which take a method's handle from it at every call (guarded_channel.py).
    return grpc.intercept_channel(GuardedChannel(channel), PropagatingInterceptor(internal_token))
