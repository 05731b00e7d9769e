"""Delivering a tenant's TrackBatch to ingest over gRPC, and ingest's errors as the collector's own.

The collector knows no gRPC: it calls `BatchSender.send` and catches `DeliveryError`, whose subclasses say
what the HTTP side answers (503 and 429 with Retry-After, 400 for a refused batch). `IngestSender` is the
gRPC implementation: the kit's internal channel carries the internal token, and binding a CallContext around
the call makes its interceptor add the tenant, request id and principal, as the gateway's pass-through does.
"""

from __future__ import annotations

import time
from typing import ClassVar, Protocol

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wayline.common.auth import Caller
from wayline.common.clients import internal_channel
from wayline.common.context import CallContext, bind_call
from wayline.common.errors import FieldViolation, status_details
from wayline.common.tls import ChannelTls
from wayline.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc

__all__ = [
    "TRACK_BATCH",
    "BatchRefused",
    "BatchSender",
    "DeliveryError",
    "DeliveryFailed",
    "IngestBusy",
    "IngestSender",
    "IngestUnavailable",
]

TRACK_BATCH = "/wayline.ingest.v1.IngestService/TrackBatch"
_INGEST = ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"]


class DeliveryError(Exception):
    """Ingest did not take the batch; nothing of the failed call is known to be stored."""

    status: ClassVar[int] = 500
    default_retry_after: ClassVar[float | None] = None

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after


class IngestUnavailable(DeliveryError):
    """Ingest is down, starting, or its spool cannot be written: retry (HTTP 503)."""

    status = 503
    default_retry_after = 1.0


class IngestBusy(DeliveryError):
    """Ingest's spool is over its quota, or a quota ran out: retry after a while (HTTP 429)."""

    status = 429
    default_retry_after = 1.0


class BatchRefused(DeliveryError):
    """Ingest refused the batch as a whole (HTTP 400); `violations` says why."""

    status = 400

    def __init__(self, message: str, violations: list[FieldViolation]) -> None:
        super().__init__(message)
        self.violations = violations


class DeliveryFailed(DeliveryError):
    """Anything else: a bug or a misconfiguration (a wrong internal token); logged, HTTP 500."""


class BatchSender(Protocol):
    def send(
        self, caller: Caller, request_id: str, request: ingest_service_pb2.TrackBatchRequest
    ) -> ingest_service_pb2.TrackBatchResponse:
        """Deliver `request` for `caller`'s tenant; raise a DeliveryError when ingest does not take it."""
        ...

    def ready(self) -> bool:
        """Whether a send can succeed now (ingest answers and serves)."""
        ...


class IngestSender:
    """Sends batches to ingest over one channel; thread-safe (the collector calls it from many threads)."""

    def __init__(self, channel: grpc.Channel, *, timeout_seconds: float) -> None:
        self._channel = channel
        self._stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout = timeout_seconds

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        internal_token: str | None,
        timeout_seconds: float,
        max_message_bytes: int,
        tls: ChannelTls | None = None,
    ) -> IngestSender:
        """A sender with its own internal channel to ingest at `address` (host:port), over TLS when the
        services' mesh uses it."""
        channel = internal_channel(
            address,
            internal_token=internal_token,
            services=[_INGEST],
            max_message_bytes=max_message_bytes,
            tls=tls,
        )
        return cls(channel, timeout_seconds=timeout_seconds)

    def send(
        self, caller: Caller, request_id: str, request: ingest_service_pb2.TrackBatchRequest
    ) -> ingest_service_pb2.TrackBatchResponse:
        call = CallContext(
            request_id=request_id,
            method=TRACK_BATCH,
            tenant=caller.tenant,
            scopes=caller.scopes,
            deadline=time.monotonic() + self._timeout,
            principal=caller.principal,
        )
        with bind_call(call):
            try:
                response: ingest_service_pb2.TrackBatchResponse = self._stub.TrackBatch(request)
            except grpc.RpcError as error:
                raise delivery_error(error) from None
        return response

    def ready(self) -> bool:
        try:
            answer = self._health.Check(health_pb2.HealthCheckRequest(service=_INGEST.full_name), timeout=1.0)
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()


def delivery_error(error: grpc.RpcError) -> DeliveryError:
    """The collector's error for a failed TrackBatch call."""
    code = error.code()  # a failed call is also a grpc.Call
    message = error.details() or code.name
    details = status_details(error)
    retry_after = next(
        (
            d.retry_delay.ToTimedelta().total_seconds()
            for d in details
            if isinstance(d, error_details_pb2.RetryInfo)
        ),
        None,
    )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return IngestUnavailable(f"ingest is unavailable: {message}", retry_after=retry_after)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return IngestBusy(f"ingest is over capacity: {message}", retry_after=retry_after)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = [
            FieldViolation(v.field, v.description, v.reason)
            for d in details
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ]
        return BatchRefused(message, violations)
    return DeliveryFailed(f"ingest answered {code.name}: {message}")
