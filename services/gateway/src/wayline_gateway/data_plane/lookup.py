"""The control plane's answer to the data plane's one question: what does this key (by its SHA-256) stand for?

`GET /keys/{digest}` on a Unix socket only the gateway's user reaches. 200: the key is accepted now, with its
tenant, principal, key id, scopes, when it stops being accepted, and the limits in force for the key and for
its tenant, as one line of tab-separated fields (`usable_key_line`; the Lua side splits it without a JSON
library). 404: the key is missing, unknown, revoked, expired or its tenant suspended: the data plane sends
such a key's calls to the control plane, which refuses each with its own code and message. The store is read
at every question (the data plane keeps the answer for the revocation window).
"""

from __future__ import annotations

import math

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wayline.common.auth import Caller
from wayline.common.errors import WaylineError
from wayline_gateway.keys import ApiKeyAuthenticator
from wayline_gateway.model import Limits
from wayline_gateway.quotas import QuotaGate

__all__ = ["key_lookup_app", "usable_key_line"]

_DIGEST_LENGTH = 64


def _number(value: float | None) -> str:
    return "" if value is None or math.isinf(value) else repr(float(value))


def _limits(quota: str, limits: Limits) -> list[str]:
    return [
        quota,
        _number(limits.requests_per_second),
        _number(limits.requests_burst),
        _number(limits.events_per_second),
        _number(limits.events_burst),
        _number(limits.max_concurrent_requests),
    ]


def usable_key_line(caller: Caller, expires_micros: int | None, gate: QuotaGate) -> str:
    """tenant, principal, key id, scopes (comma-separated), expiry (seconds since the epoch, empty: none),
    then the key's quota name and limits (requests/s, burst, events/s, burst, calls in progress), then the
    tenant's; a key without an id (a principal that names none) has empty key fields and only the tenant's
    limits apply, as in quotas.py."""
    key_id = caller.principal.rpartition("/apiKeys/")[2]
    key_fields = (
        _limits(f"tenants/{caller.tenant}/apiKeys/{key_id}/quota", gate.limits(caller.tenant, key_id))
        if key_id
        else [""] * 6
    )
    fields = [
        caller.tenant,
        caller.principal,
        key_id,
        ",".join(sorted(caller.scopes)),
        "" if expires_micros is None else repr(expires_micros / 1e6),
        *key_fields,
        *_limits(f"tenants/{caller.tenant}/quota", gate.limits(caller.tenant)),
    ]
    if any("\t" in field or "\n" in field for field in fields):
        raise ValueError("a key's fields hold a tab or a newline")  # names are checked on creation
    return "\t".join(fields) + "\n"


def key_lookup_app(authenticator: ApiKeyAuthenticator, gate: QuotaGate) -> Starlette:
    def answer(request: Request) -> PlainTextResponse:
        key_digest = request.path_params["digest"]
        if len(key_digest) != _DIGEST_LENGTH or not all(c in "0123456789abcdef" for c in key_digest):
            return PlainTextResponse("not a SHA-256 in lower-case hex\n", status_code=400)
        try:
            caller, expires = authenticator.usable(key_digest)
        except WaylineError as refused:
            return PlainTextResponse(f"{refused.reason}\n", status_code=404)
        return PlainTextResponse(usable_key_line(caller, expires, gate))

    # A sync endpoint: Starlette runs it on its thread pool, so a slow store holds no other lookup.
    return Starlette(routes=[Route("/keys/{digest}", answer, methods=["GET"])])
