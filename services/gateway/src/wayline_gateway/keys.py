"""API keys → tenant and scopes: the gateway's authenticator.

Keys are held by their SHA-256 digest only, so a leaked memory dump or database row reveals no usable key.
Lookups are cached for `cache_seconds` (found and not found alike, so a flood of wrong keys does not reach the
database): a key revoked, or a tenant suspended, on another replica is refused here within that time; on this
replica at once (`forget`). A lookup that read the store before such a change committed must not write what
it read back after `forget` emptied the cache: every `forget` takes the next number of a sequence, a lookup
notes the number before it reads the store, and keeps its result only if the number is unchanged (as the
orchestrator's contact check cache does). The bootstrap key from the settings is held in memory and is never
stored.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from wayline.common.auth import Caller
from wayline.common.errors import PermissionDenied, Unauthenticated
from wayline_gateway.model import ApiKeyRecord, KeyState, TenantState, now_micros

__all__ = ["ApiKey", "ApiKeyAuthenticator", "KeyLookup", "digest", "presented_key"]

KeyLookup = Callable[[str], "tuple[ApiKeyRecord, TenantState] | None"]
_MINUTE = 60_000_000
_MAX_CACHED = 100_000


@dataclass(frozen=True)
class ApiKey:
    """A key held in memory (the bootstrap key)."""

    tenant: str
    scopes: frozenset[str]
    name: str = ""  # `tenants/{tenant}/apiKeys/{id}`: passed on as the principal for audit logs


def digest(secret: str) -> str:
    """SHA-256 of a secret, hex: what the store keeps and the authenticator looks up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def presented_key(metadata: Mapping[str, str]) -> str:
    """The key from `authorization: Bearer <key>` or `x-api-key: <key>`; empty when there is none."""
    authorization = metadata.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return metadata.get("x-api-key", "").strip()


class ApiKeyAuthenticator:
    def __init__(
        self,
        scopes: Mapping[str, str],
        *,
        lookup: KeyLookup = lambda _digest: None,
        memory_keys: Mapping[str, ApiKey] | None = None,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], int] = now_micros,
    ) -> None:
        """`scopes` maps full method paths to the scope they need; `lookup` finds a stored key by digest;
        `memory_keys` maps digests to keys held in memory (the bootstrap key)."""
        self._scopes = dict(scopes)
        self._lookup = lookup
        self._memory = dict(memory_keys or {})
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[float, tuple[ApiKeyRecord, TenantState] | None]] = {}
        self._uses: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._sequence = 0  # taken by every `forget`; a lookup keeps its result only if it is unchanged

    def forget(self) -> None:
        """Drop every cached lookup (after a change on this replica), and any lookup still under way: what it
        read may predate the change, so it is answered but not kept."""
        with self._lock:
            self._sequence += 1
            self._cache.clear()

    def take_uses(self) -> dict[tuple[str, str], int]:
        """(tenant, key id) → the minute each key was last used since the previous call, to be stored."""
        with self._lock:
            uses, self._uses = self._uses, {}
        return uses

    def _stored(self, key_digest: str) -> tuple[ApiKeyRecord, TenantState] | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_digest)
            sequence = self._sequence
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        found = self._lookup(key_digest)
        with self._lock:
            if self._sequence != sequence:  # forgotten while we read: this may be from before the change
                return found
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key_digest] = (now, found)
        return found

    def authenticate(self, method: str, metadata: Mapping[str, str]) -> Caller:
        key = presented_key(metadata)
        if not key:
            raise Unauthenticated(
                "no API key: send `authorization: Bearer <key>` (or `x-api-key`) metadata",
                reason="API_KEY_MISSING",
            )
        return self._allow(method, self._caller(digest(key), self._stored))

    def usable(self, key_digest: str) -> tuple[Caller, int | None]:
        """The caller a key's digest stands for, and when the key stops being accepted (microseconds since
        the epoch; None: only when it is revoked), read from the store now rather than from the cache: the
        data plane keeps the answer for `cache_seconds` (ADR 105), so the revocation window stays the one
        stated. Raises as `authenticate` does for a key that is not accepted; checks no scope."""
        if key_digest in self._memory:
            return self._caller(key_digest, self._lookup), None
        stored = self._lookup(key_digest)
        caller = self._caller(key_digest, lambda _digest: stored)
        return caller, stored[0].expire_time if stored is not None else None

    def _caller(self, key_digest: str, lookup: KeyLookup) -> Caller:
        held = self._memory.get(key_digest)
        if held is not None:
            return Caller(held.tenant, held.scopes, held.name)
        stored = lookup(key_digest)
        # The lookup is by digest; comparing the digests again in constant time costs nothing and keeps any
        # index or cache behaviour from becoming a timing oracle on the secret.
        if stored is None or not hmac.compare_digest(stored[0].digest, key_digest):
            raise Unauthenticated("the API key is not recognised", reason="API_KEY_INVALID")
        record, tenant_state = stored
        now = self._wall_clock()
        state = record.state(now)
        if state is KeyState.REVOKED:
            raise Unauthenticated(f"the API key '{record.name}' was revoked", reason="API_KEY_REVOKED")
        if state is KeyState.EXPIRED:
            raise Unauthenticated(
                f"the API key '{record.name}' expired; use the key that replaced it", reason="API_KEY_EXPIRED"
            )
        if tenant_state is TenantState.SUSPENDED:
            raise PermissionDenied(
                f"tenant '{record.tenant_id}' is suspended; ask the operator to resume it",
                reason="TENANT_SUSPENDED",
            )
        minute = now - now % _MINUTE
        with self._lock:
            self._uses[(record.tenant_id, record.key_id)] = minute
        return Caller(record.tenant_id, record.scopes, record.name)

    def _allow(self, method: str, caller: Caller) -> Caller:
        needed = self._scopes.get(method)
        if needed is None or needed not in caller.scopes:
            raise PermissionDenied(
                f"this API key lacks the '{needed}' scope that {method.strip('/')} needs",
                reason="SCOPE_MISSING",
                metadata={"required_scope": str(needed)},
            )
        return caller
