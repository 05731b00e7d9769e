"""The gateway's records — tenants, API keys, quota limits — as plain values, free of gRPC and SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from enum import Enum

__all__ = [
    "LIMIT_NAMES",
    "ApiKeyRecord",
    "KeyState",
    "Limits",
    "QuotaRecord",
    "TenantRecord",
    "TenantState",
    "in_force",
    "now_micros",
]


def now_micros() -> int:
    """The wall clock in microseconds since the epoch: the unit of every stored time."""
    return time.time_ns() // 1000


class TenantState(Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class KeyState(Enum):
    ACTIVE = "active"
    EXPIRING = "expiring"  # rotated: accepted until its expire time
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TenantRecord:
    tenant_id: str
    display_name: str
    state: TenantState
    create_time: int  # microseconds since the epoch
    update_time: int
    version: int  # bumped by every update: the etag

    @property
    def name(self) -> str:
        return f"tenants/{self.tenant_id}"


@dataclass(frozen=True)
class ApiKeyRecord:
    tenant_id: str
    key_id: str
    display_name: str
    scopes: frozenset[str]  # "read", "write", "admin"
    digest: str  # SHA-256 of the secret, hex; the secret itself is never stored
    key_prefix: str
    create_time: int
    expire_time: int | None = None
    revoke_time: int | None = None
    last_use_time: int | None = None
    rotated_from: str = ""  # key ids within the tenant
    rotated_to: str = ""

    @property
    def name(self) -> str:
        return f"tenants/{self.tenant_id}/apiKeys/{self.key_id}"

    def state(self, now: int) -> KeyState:
        if self.revoke_time is not None:
            return KeyState.REVOKED
        if self.expire_time is not None:
            return KeyState.EXPIRED if self.expire_time <= now else KeyState.EXPIRING
        return KeyState.ACTIVE

    def accepted(self, now: int) -> bool:
        return self.state(now) in (KeyState.ACTIVE, KeyState.EXPIRING)


@dataclass(frozen=True)
class Limits:
    """Rate and concurrency limits; None means inherited (a key's from its tenant, a tenant's from the
    gateway's defaults)."""

    requests_per_second: float | None = None
    requests_burst: int | None = None
    events_per_second: float | None = None
    events_burst: int | None = None
    max_concurrent_requests: int | None = None

    def over(self, inherited: Limits) -> Limits:
        """These limits with every unset one taken from `inherited`."""
        return replace(
            self,
            **{f.name: getattr(inherited, f.name) for f in fields(self) if getattr(self, f.name) is None},
        )


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


def in_force(defaults: Limits, tenant: Limits | None, key: Limits | None = None) -> Limits:
    """The limits a tenant's (or one of its keys') calls meet: a key's unset limits are its tenant's, a
    tenant's unset limits are the gateway's `defaults`."""
    inherited = tenant.over(defaults) if tenant is not None else defaults
    return key.over(inherited) if key is not None else inherited


@dataclass(frozen=True)
class QuotaRecord:
    """The limits set on a tenant (`key_id` empty) or on one key."""

    tenant_id: str
    key_id: str
    limits: Limits
    update_time: int
    version: int

    @property
    def name(self) -> str:
        if self.key_id:
            return f"tenants/{self.tenant_id}/apiKeys/{self.key_id}/quota"
        return f"tenants/{self.tenant_id}/quota"
