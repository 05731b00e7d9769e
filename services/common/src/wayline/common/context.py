"""What the current RPC knows about its caller: request id, tenant, scopes and deadline.

The server interceptor fills these context variables in the thread that runs the handler; the client
interceptor reads them so that every downstream call carries the same request id, tenant and the remaining
deadline. Domain code asks for the tenant with `require_tenant()` instead of reading metadata.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from wayline.common.errors import DeadlineExceeded, Unauthenticated

__all__ = [
    "INTERNAL_TOKEN_HEADER",
    "PRINCIPAL_HEADER",
    "REQUEST_ID_HEADER",
    "TENANT_HEADER",
    "CallContext",
    "bind_call",
    "caller_timeout",
    "current_call",
    "remaining_seconds",
    "require_tenant",
]

REQUEST_ID_HEADER = "x-request-id"
TENANT_HEADER = "x-wayline-tenant"
INTERNAL_TOKEN_HEADER = "x-wayline-internal-token"  # noqa: S105 - a header name, not a secret
# Who the gateway authenticated (the API key's resource name), for audit logs of manual changes.
PRINCIPAL_HEADER = "x-wayline-principal"
_NO_DEADLINE = 1e8  # seconds: grpc reports "no deadline" as a very distant one, not as None


@dataclass(frozen=True)
class CallContext:
    """The caller of the RPC being served."""

    request_id: str
    method: str
    tenant: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)
    deadline: float | None = None  # time.monotonic() value, None when the caller set none
    principal: str = ""  # the API key's name, `tenants/{tenant}/apiKeys/{id}`, when the gateway knows it


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("wayline_call", default=None)


@contextmanager
def bind_call(call: CallContext) -> Iterator[CallContext]:
    """Make `call` the current call for the duration of the block."""
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


def current_call() -> CallContext | None:
    """The call being served in this thread, or None outside an RPC."""
    return _current.get()


def require_tenant() -> str:
    """The tenant the gateway authenticated for this call; UNAUTHENTICATED when there is none."""
    call = _current.get()
    if call is None or not call.tenant:
        raise Unauthenticated("this call carries no tenant; call through the gateway with an API key")
    return call.tenant


def caller_timeout(context: grpc.ServicerContext) -> float | None:
    """Seconds the caller of the RPC being served gave it, None when the caller set no deadline."""
    remaining = context.time_remaining()
    if remaining is None or remaining > _NO_DEADLINE:
        return None
    return float(remaining)


def remaining_seconds() -> float | None:
    """Seconds left before the current call's deadline, None when it has none.

    Raises DEADLINE_EXCEEDED once the deadline has passed, so no downstream work starts that nobody awaits.
    """
    call = _current.get()
    if call is None or call.deadline is None:
        return None
    left = call.deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the caller's deadline passed before the downstream call started")
    return left
