"""Who may call a service. Internal services trust tenant metadata only from callers that present the
suite's internal token (the gateway and the other services); the gateway brings its own API-key authenticator.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from wayline.common.context import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, TENANT_HEADER
from wayline.common.errors import Unauthenticated

__all__ = ["Authenticator", "Caller", "InternalCallerAuthenticator"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the tenant it acts for (may be empty for tenant-less calls) and its scopes."""

    tenant: str
    scopes: frozenset[str]
    principal: str = ""  # the API key's name, for audit logs; empty when unknown


class Authenticator(Protocol):
    def authenticate(self, method: str, metadata: Mapping[str, str]) -> Caller:
        """Return the caller of `method`, or raise Unauthenticated / PermissionDenied."""
        ...


class InternalCallerAuthenticator:
    """Accepts only callers that present the internal token; takes the tenant from their metadata."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an internal token is required")
        self._token = token.encode()

    def authenticate(self, method: str, metadata: Mapping[str, str]) -> Caller:
        presented = metadata.get(INTERNAL_TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(presented, self._token):
            raise Unauthenticated(
                f"{method} is internal to Wayline: call it through the gateway with an API key "
                "(services calling each other must share WAYLINE_INTERNAL_TOKEN)",
                reason="INTERNAL_CALLER_REQUIRED",
            )
        return Caller(
            tenant=metadata.get(TENANT_HEADER, ""),
            scopes=frozenset({"internal"}),
            principal=metadata.get(PRINCIPAL_HEADER, ""),
        )
