"""Tenants, API keys and quotas: who may do what, and the rules of each change. gRPC-free: the servicer turns
requests into these calls and records into responses.

Permissions (the contract's AdminService comment): the operator — an admin key of the operator tenant, the
tenant of the gateway's bootstrap key — manages every tenant; any other admin key reads its own tenant and
manages its own keys and key quotas. Naming another tenant is PERMISSION_DENIED (`OTHER_TENANT`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from wayline.common.auth import Caller
from wayline.common.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from wayline.common.paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from wayline_gateway.keys import digest
from wayline_gateway.model import (
    LIMIT_NAMES,
    ApiKeyRecord,
    Limits,
    QuotaRecord,
    TenantRecord,
    TenantState,
    in_force,
    now_micros,
)
from wayline_gateway.store.admin_store import AdminStore

__all__ = [
    "GRANTABLE_SCOPES",
    "MAX_OVERLAP_SECONDS",
    "Admin",
    "NewKey",
    "QuotaView",
]

GRANTABLE_SCOPES = frozenset({"read", "write", "admin"})
DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 30 * 24 * 3600
SECRET_PREFIX = "wl_live_"  # noqa: S105 - the public start of every secret, not a secret
_TENANT_ID = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
_TENANT_NAME = re.compile(r"tenants/([^/]+)")
_KEY_NAME = re.compile(r"tenants/([^/]+)/apiKeys/([^/]+)")
_TENANT_QUOTA = re.compile(r"tenants/([^/]+)/quota")
_KEY_QUOTA = re.compile(r"tenants/([^/]+)/apiKeys/([^/]+)/quota")
_MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class NewKey:
    """A created or rotated key and its secret, which is returned once and never stored."""

    key: ApiKeyRecord
    secret: str


@dataclass(frozen=True)
class QuotaView:
    """A quota as set (None when nothing was ever set) and the limits in force after inheritance."""

    name: str
    record: QuotaRecord | None
    effective: Limits


def _invalid(field: str, description: str, reason: str = "INVALID") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", [FieldViolation(field, description, reason)])


def _match(pattern: re.Pattern[str], name: str, field: str, shape: str) -> tuple[str, ...]:
    found = pattern.fullmatch(name)
    if found is None:
        raise _invalid(field, f"must be a resource name of the form `{shape}`, got {name!r}")
    return found.groups()


def _display_name(value: str, field: str) -> str:
    if len(value) > _MAX_DISPLAY_NAME:
        raise _invalid(field, f"at most {_MAX_DISPLAY_NAME} characters")
    return value


class Admin:
    def __init__(
        self,
        store: AdminStore,
        operator_tenant: str,
        default_limits: Limits,
        *,
        clock: Callable[[], int] = now_micros,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """`default_limits` (every limit set) is what tenants inherit; `on_change` runs after every change
        of a key, tenant or quota, so that this replica's caches drop what they hold at once."""
        self._store = store
        self.operator_tenant = operator_tenant
        self._defaults = default_limits
        self._clock = clock
        self._on_change = on_change

    # Permission checks

    def _require_operator(self, caller: Caller, what: str) -> None:
        if caller.tenant != self.operator_tenant:
            raise PermissionDenied(
                f"{what} needs an admin key of the operator tenant '{self.operator_tenant}'",
                reason="OPERATOR_ONLY",
            )

    def _require_tenant(self, caller: Caller, tenant_id: str) -> None:
        if caller.tenant not in (tenant_id, self.operator_tenant):
            raise PermissionDenied(
                f"this key acts for tenant '{caller.tenant}' and may not manage 'tenants/{tenant_id}'",
                reason="OTHER_TENANT",
            )

    def _changed(self) -> None:
        self._on_change()

    # Tenants

    def create_tenant(self, caller: Caller, tenant_id: str, display_name: str) -> TenantRecord:
        self._require_operator(caller, "CreateTenant")
        if not tenant_id:
            tenant_id = f"tenant-{secrets.token_hex(5)}"
        elif not _TENANT_ID.fullmatch(tenant_id):
            raise _invalid(
                "tenant_id",
                "lower-kebab-case, 3 to 63 characters: a letter first, then letters, digits or '-', "
                "not ending with '-'",
            )
        now = self._clock()
        tenant = TenantRecord(
            tenant_id, _display_name(display_name, "tenant.display_name"), TenantState.ACTIVE, now, now, 1
        )
        return self._store.create_tenant(tenant)

    def ensure_operator_tenant(self) -> TenantRecord:
        now = self._clock()
        return self._store.ensure_tenant(
            TenantRecord(self.operator_tenant, "Operator", TenantState.ACTIVE, now, now, 1)
        )

    def tenant_id(self, name: str, field: str = "name") -> str:
        return _match(_TENANT_NAME, name, field, "tenants/{tenant_id}")[0]

    def get_tenant(self, caller: Caller, name: str) -> TenantRecord:
        tenant_id = self.tenant_id(name)
        self._require_tenant(caller, tenant_id)
        return self._store.tenant(tenant_id)

    def list_tenants(
        self, caller: Caller, requested_size: int, token: str
    ) -> tuple[list[TenantRecord], str, int]:
        self._require_operator(caller, "ListTenants")
        size = page_size(requested_size, default=50, maximum=1000)
        after = ""
        if token:
            fields = decode_page_token(token, "ListTenants")
            if not isinstance(fields.get("after"), str):
                raise invalid_page_token("ListTenants")
            after = fields["after"]
        tenants, total = self._store.tenants(after, size + 1)
        next_token = encode_page_token({"after": tenants[size - 1].tenant_id}) if len(tenants) > size else ""
        return tenants[:size], next_token, total

    def update_tenant(  # noqa: PLR0917 - the contract's fields, one by one
        self,
        caller: Caller,
        name: str,
        paths: Collection[str],
        display_name: str,
        state: TenantState | None,
        etag: str,
    ) -> TenantRecord:
        self._require_operator(caller, "UpdateTenant")
        tenant_id = self.tenant_id(name, "tenant.name")
        if not paths:
            raise _invalid("update_mask", "name the fields to change: display_name, state", "REQUIRED")
        changes: dict[str, object] = {}
        for path in paths:
            if path == "display_name":
                changes["display_name"] = _display_name(display_name, "tenant.display_name")
            elif path == "state":
                if state is None:
                    raise _invalid("tenant.state", "TENANT_STATE_ACTIVE or TENANT_STATE_SUSPENDED")
                if state is TenantState.SUSPENDED and tenant_id == self.operator_tenant:
                    raise FailedPrecondition(
                        "the operator tenant cannot be suspended: it is the one that resumes others",
                        reason="OPERATOR_TENANT",
                    )
                changes["state"] = state
            else:
                raise _invalid("update_mask", f"unknown path {path!r}; known: display_name, state")
        updated = self._store.update_tenant(tenant_id, changes, _etag_version(etag), self._clock())
        self._changed()
        return updated

    def delete_tenant(self, caller: Caller, name: str) -> TenantRecord:
        self._require_operator(caller, "DeleteTenant")
        tenant_id = self.tenant_id(name)
        if tenant_id == self.operator_tenant:
            raise FailedPrecondition("the operator tenant cannot be deleted", reason="OPERATOR_TENANT")
        deleted = self._store.delete_tenant(tenant_id, self._clock())
        self._changed()
        return deleted

    # API keys

    def _new_key(
        self,
        tenant_id: str,
        display_name: str,
        scopes: frozenset[str],
        expire_time: int | None,
        rotated_from: str = "",
    ) -> NewKey:
        secret = SECRET_PREFIX + secrets.token_urlsafe(30)
        key = ApiKeyRecord(
            tenant_id=tenant_id,
            key_id=secrets.token_hex(8),
            display_name=display_name,
            scopes=scopes,
            digest=digest(secret),
            key_prefix=secret[: len(SECRET_PREFIX) + 4],
            create_time=self._clock(),
            expire_time=expire_time,
            rotated_from=rotated_from,
        )
        return NewKey(key, secret)

    def create_key(
        self,
        caller: Caller,
        parent: str,
        display_name: str,
        scopes: Collection[str],
        expire_time: int | None,
    ) -> NewKey:
        tenant_id = self.tenant_id(parent, "parent")
        self._require_tenant(caller, tenant_id)
        granted = frozenset(scopes)
        if not granted or not granted <= GRANTABLE_SCOPES:
            raise _invalid(
                "api_key.scopes", "at least one of SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN, and only those"
            )
        if expire_time is not None and expire_time <= self._clock():
            raise _invalid("api_key.expire_time", "lies in the past")
        new = self._new_key(
            tenant_id, _display_name(display_name, "api_key.display_name"), granted, expire_time
        )
        self._store.create_key(new.key)
        return new

    def key_name(self, name: str) -> tuple[str, str]:
        tenant_id, key_id = _match(_KEY_NAME, name, "name", "tenants/{tenant_id}/apiKeys/{api_key_id}")
        return tenant_id, key_id

    def list_keys(
        self, caller: Caller, parent: str, requested_size: int, token: str, show_inactive: bool
    ) -> tuple[list[ApiKeyRecord], str, int]:
        tenant_id = self.tenant_id(parent, "parent")
        self._require_tenant(caller, tenant_id)
        size = page_size(requested_size, default=50, maximum=1000)
        before: tuple[int, str] | None = None
        if token:
            fields = decode_page_token(token, "ListApiKeys")
            bound = (parent, show_inactive)
            if [fields.get("parent"), fields.get("inactive")] != list(bound) or not isinstance(
                fields.get("time"), int
            ):
                raise invalid_page_token("ListApiKeys")
            before = (fields["time"], str(fields.get("id", "")))
        keys, total = self._store.keys(
            tenant_id, now=self._clock(), show_inactive=show_inactive, before=before, limit=size + 1
        )
        next_token = ""
        if len(keys) > size:
            last = keys[size - 1]
            next_token = encode_page_token(
                {"parent": parent, "inactive": show_inactive, "time": last.create_time, "id": last.key_id}
            )
        return keys[:size], next_token, total

    def revoke_key(self, caller: Caller, name: str) -> ApiKeyRecord:
        tenant_id, key_id = self.key_name(name)
        self._require_tenant(caller, tenant_id)
        caller_key = caller.principal.rpartition("/")[2] if caller.tenant == tenant_id else ""
        revoked = self._store.revoke_key(tenant_id, key_id, self._clock(), caller_key)
        self._changed()
        return revoked

    def rotate_key(
        self, caller: Caller, name: str, overlap_seconds: float | None
    ) -> tuple[NewKey, ApiKeyRecord]:
        tenant_id, key_id = self.key_name(name)
        self._require_tenant(caller, tenant_id)
        overlap = DEFAULT_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
        if not 0 <= overlap <= MAX_OVERLAP_SECONDS:
            raise _invalid("overlap", "between 0 and 30 days")
        old = self._store.key(tenant_id, key_id)
        now = self._clock()
        new = self._new_key(tenant_id, old.display_name, old.scopes, old.expire_time, rotated_from=old.key_id)
        stored, previous = self._store.rotate_key(tenant_id, key_id, new.key, now + int(overlap * 1e6), now)
        self._changed()
        return NewKey(stored, new.secret), previous

    # Quotas

    def _quota_subject(self, caller: Caller, name: str) -> tuple[str, str]:
        key_quota = _KEY_QUOTA.fullmatch(name)
        if key_quota is not None:
            tenant_id, key_id = key_quota.groups()
        else:
            tenant_quota = _TENANT_QUOTA.fullmatch(name)
            if tenant_quota is None:
                raise _invalid(
                    "quota.name" if name else "name",
                    "`tenants/{tenant_id}/quota` or `tenants/{tenant_id}/apiKeys/{api_key_id}/quota`",
                )
            tenant_id, key_id = tenant_quota.group(1), ""
        self._require_tenant(caller, tenant_id)
        return tenant_id, key_id

    def _in_force(self, tenant_id: str, key_id: str, own: QuotaRecord | None) -> Limits:
        """The limits in force for the subject whose own record (already read) is `own`."""
        if not key_id:
            return in_force(self._defaults, own.limits if own else None)
        tenant = self._store.quota(tenant_id, "")
        return in_force(self._defaults, tenant.limits if tenant else None, own.limits if own else None)

    def get_quota(self, caller: Caller, name: str) -> QuotaView:
        tenant_id, key_id = self._quota_subject(caller, name)
        record = self._store.quota(tenant_id, key_id)
        return QuotaView(name, record, self._in_force(tenant_id, key_id, record))

    def update_quota(
        self, caller: Caller, name: str, limits: Limits, paths: Collection[str], etag: str
    ) -> QuotaView:
        tenant_id, key_id = self._quota_subject(caller, name)
        if not key_id:
            self._require_operator(caller, "UpdateQuota on a tenant's quota")
        _check_limits(limits)
        current = self._store.quota(tenant_id, key_id)
        kept = current.limits if current else Limits()
        names = _mask_limits(paths)
        merged = replace(kept, **{n: getattr(limits, n) for n in names})
        record = self._store.set_quota(tenant_id, key_id, merged, _etag_version(etag), self._clock())
        self._changed()
        return QuotaView(name, record, self._in_force(tenant_id, key_id, record))


def _etag_version(etag: str) -> int | None:
    if not etag:
        return None
    if not (etag.isascii() and etag.isdigit()):  # str.isdigit alone takes `²`, which int() refuses
        raise _invalid("etag", "not an etag this service issued; send back the etag you read")
    return int(etag)


def _mask_limits(paths: Collection[str]) -> tuple[str, ...]:
    if not paths or list(paths) == ["limits"]:
        return LIMIT_NAMES
    names = []
    for path in paths:
        name = path.removeprefix("limits.")
        if name not in LIMIT_NAMES or not path.startswith("limits."):
            raise _invalid(
                "update_mask",
                f"unknown path {path!r}; known: limits, " + ", ".join(f"limits.{n}" for n in LIMIT_NAMES),
            )
        names.append(name)
    return tuple(names)


def _check_limits(limits: Limits) -> None:
    for name in LIMIT_NAMES:
        value = getattr(limits, name)
        if value is not None and not value > 0:
            raise _invalid(
                f"quota.limits.{name}", "must be positive (leave it unset to inherit)", "OUT_OF_RANGE"
            )
