"""protobuf ⇄ the gateway's records (model.py)."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2

from wayline.api.v1 import annotations_pb2
from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import duration_violation, timestamp_violation
from wayline.gateway.v1 import api_key_pb2, quota_pb2, tenant_pb2
from wayline_gateway.admin import QuotaView
from wayline_gateway.model import LIMIT_NAMES, ApiKeyRecord, KeyState, Limits, TenantRecord, TenantState

__all__ = [
    "api_key_pb",
    "limits_from_pb",
    "micros_of",
    "quota_pb",
    "scopes_from_pb",
    "seconds_of",
    "tenant_pb",
    "tenant_state_from_pb",
]

_SCOPES = {
    annotations_pb2.SCOPE_READ: "read",
    annotations_pb2.SCOPE_WRITE: "write",
    annotations_pb2.SCOPE_ADMIN: "admin",
}
_SCOPE_VALUES = {name: value for value, name in _SCOPES.items()}
_KEY_STATES = {
    KeyState.ACTIVE: api_key_pb2.API_KEY_STATE_ACTIVE,
    KeyState.EXPIRING: api_key_pb2.API_KEY_STATE_EXPIRING,
    KeyState.EXPIRED: api_key_pb2.API_KEY_STATE_EXPIRED,
    KeyState.REVOKED: api_key_pb2.API_KEY_STATE_REVOKED,
}
_TENANT_STATES = {
    TenantState.ACTIVE: tenant_pb2.TENANT_STATE_ACTIVE,
    TenantState.SUSPENDED: tenant_pb2.TENANT_STATE_SUSPENDED,
}


def _timestamp(micros: int | None) -> timestamp_pb2.Timestamp | None:
    if micros is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(micros)
    return ts


def micros_of(ts: timestamp_pb2.Timestamp, field: str) -> int:
    """`ts` in microseconds; INVALID_ARGUMENT naming `field` for a time outside Timestamp's range (the wire
    carries any int64 seconds, which would overflow the store's column)."""
    violation = timestamp_violation(ts, field)
    if violation is not None:
        raise InvalidArgument(f"{violation.field}: {violation.description}", [violation])
    return int(ts.ToMicroseconds())


def seconds_of(duration: duration_pb2.Duration, field: str) -> float:
    """`duration` in seconds; INVALID_ARGUMENT naming `field` for one outside Duration's range or with nanos
    of the wrong sign (ToTimedelta raised OverflowError for any int64 seconds: INTERNAL)."""
    violation = duration_violation(duration, field)
    if violation is not None:
        raise InvalidArgument(f"{violation.field}: {violation.description}", [violation])
    return float(duration.ToTimedelta().total_seconds())


def tenant_pb(tenant: TenantRecord) -> tenant_pb2.Tenant:
    return tenant_pb2.Tenant(
        name=tenant.name,
        display_name=tenant.display_name,
        state=_TENANT_STATES[tenant.state],
        create_time=_timestamp(tenant.create_time),
        update_time=_timestamp(tenant.update_time),
        etag=str(tenant.version),
    )


def tenant_state_from_pb(value: int) -> TenantState | None:
    """The state a request asks for; None for UNSPECIFIED or an unknown number."""
    for state, number in _TENANT_STATES.items():
        if number == value:
            return state
    return None


def api_key_pb(key: ApiKeyRecord, now: int) -> api_key_pb2.ApiKey:
    def sibling(key_id: str) -> str:
        return f"tenants/{key.tenant_id}/apiKeys/{key_id}" if key_id else ""

    return api_key_pb2.ApiKey(
        name=key.name,
        display_name=key.display_name,
        scopes=sorted(_SCOPE_VALUES[s] for s in key.scopes),
        state=_KEY_STATES[key.state(now)],
        key_prefix=key.key_prefix,
        create_time=_timestamp(key.create_time),
        expire_time=_timestamp(key.revoke_time if key.revoke_time and key.rotated_to else key.expire_time),
        revoke_time=_timestamp(key.revoke_time),
        last_use_time=_timestamp(key.last_use_time),
        rotated_from=sibling(key.rotated_from),
        rotated_to=sibling(key.rotated_to),
    )


def scopes_from_pb(values: list[int]) -> list[str]:
    """Scope names; INVALID_ARGUMENT naming the index of UNSPECIFIED, INTERNAL or an unknown value."""
    names = []
    for index, value in enumerate(values):
        name = _SCOPES.get(value)  # type: ignore[call-overload]  # an unknown number is possible on the wire
        if name is None:
            raise InvalidArgument(
                "api_key.scopes may hold only SCOPE_READ, SCOPE_WRITE and SCOPE_ADMIN",
                [FieldViolation(f"api_key.scopes[{index}]", "not a scope a key can hold")],
            )
        names.append(name)
    return names


def limits_pb(limits: Limits) -> quota_pb2.QuotaLimits:
    message = quota_pb2.QuotaLimits()
    for name in LIMIT_NAMES:
        value = getattr(limits, name)
        if value is not None:
            setattr(message, name, value)
    return message


def limits_from_pb(message: quota_pb2.QuotaLimits) -> Limits:
    has = message.HasField
    return Limits(**{name: getattr(message, name) if has(name) else None for name in LIMIT_NAMES})  # type: ignore[arg-type]


def quota_pb(view: QuotaView) -> quota_pb2.Quota:
    record = view.record
    return quota_pb2.Quota(
        name=view.name,
        limits=limits_pb(record.limits) if record else quota_pb2.QuotaLimits(),
        effective_limits=limits_pb(view.effective),
        update_time=_timestamp(record.update_time) if record else None,
        etag=str(record.version if record else 0),
    )
