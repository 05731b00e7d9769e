"""When to send a failed batch again, and after how long.

UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED mean nothing, or not everything, was acknowledged and
the same call may succeed later; so does CANCELLED, which this client never causes itself (its own
cancellations end a send as CLIENT_CLOSED before any answer is read): a server cancels the calls that reach
it just as it begins to shut down, before any handler ran (grpc/grpc#41785, ADR 49). Every other code means
the call will not succeed, so those are reported and never retried. Delays grow exponentially with full
jitter (AWS's "Exponential Backoff and Jitter"), so clients that failed together do not come back together;
a server's RetryInfo sets the floor, because the server knows when its spool will have room.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

from wayline.common.errors import status_details

__all__ = ["RETRYABLE", "Backoff", "error_reason", "server_retry_delay", "status_code"]

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits uniformly in [0, min(maximum, initial·2ⁿ)]."""

    initial: float = 0.1
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(
        self, attempt: int, server_delay: float | None, rng: Callable[[], float] = random.random
    ) -> float:
        cap = min(self.maximum, self.initial * self.multiplier**attempt)
        jittered = rng() * cap
        return jittered if server_delay is None else max(server_delay, jittered)


def server_retry_delay(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay the server attached to `error`, in seconds; None when it sent none."""
    for detail in _details(error):
        if isinstance(detail, error_details_pb2.RetryInfo):
            seconds: float = detail.retry_delay.ToTimedelta().total_seconds()
            return seconds
    return None


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason the server attached to `error`, or the status code's name."""
    for detail in _details(error):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return str(detail.reason)
    return status_code(error).name


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call (every RpcError a stub raises is also its grpc.Call)."""
    code = getattr(error, "code", None)
    found: grpc.StatusCode = code() if callable(code) else grpc.StatusCode.UNKNOWN
    return found


def _details(error: grpc.RpcError) -> list[object]:
    try:
        return status_details(error)
    except (ValueError, AttributeError):  # no trailers (a local error) or malformed details
        return []
