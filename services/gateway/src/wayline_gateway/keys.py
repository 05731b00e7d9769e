"""API keys → tenant and scopes, and the gateway's authenticator.

Keys are held by their SHA-256 digest only, so a leaked memory dump or database row reveals no usable key.
For now one bootstrap key comes from the settings; AdminService (the gateway issue) will manage the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from wayline.common.auth import Caller
from wayline.common.errors import PermissionDenied, Unauthenticated

__all__ = ["ApiKey", "ApiKeyAuthenticator", "digest", "presented_key"]


@dataclass(frozen=True)
class ApiKey:
    tenant: str
    scopes: frozenset[str]
    name: str = ""  # `tenants/{tenant}/apiKeys/{id}`: passed on as the principal for audit logs


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(metadata: Mapping[str, str]) -> str:
    """The key from `authorization: Bearer <key>` or `x-api-key: <key>`; empty when there is none."""
    authorization = metadata.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return metadata.get("x-api-key", "").strip()


class ApiKeyAuthenticator:
    def __init__(self, keys: Mapping[str, ApiKey], scopes: Mapping[str, str]) -> None:
        """`keys` maps key digests to keys; `scopes` maps full method paths to the scope they need."""
        self._keys = dict(keys)
        self._scopes = dict(scopes)

    def authenticate(self, method: str, metadata: Mapping[str, str]) -> Caller:
        key = presented_key(metadata)
        if not key:
            raise Unauthenticated(
                "no API key: send `authorization: Bearer <key>` (or `x-api-key`) metadata",
                reason="API_KEY_MISSING",
            )
        found = self._keys.get(digest(key))
        if found is None:
            raise Unauthenticated("the API key is not recognised or was revoked", reason="API_KEY_INVALID")
        needed = self._scopes.get(method)
        if needed is None or needed not in found.scopes:
            raise PermissionDenied(
                f"this API key lacks the '{needed}' scope that {method.strip('/')} needs",
                reason="SCOPE_MISSING",
                metadata={"required_scope": str(needed)},
            )
        return Caller(tenant=found.tenant, scopes=found.scopes, principal=found.name)
