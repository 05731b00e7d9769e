"""Tenants, API keys and quotas in SQL: each method one transaction, parameterised, the same on SQLite and
PostgreSQL. Conditions that must hold at the moment of a write (an etag, the last admin key, a tenant being
suspended) are checked inside that write's transaction, so two replicas cannot both pass them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from wayline.common.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, Unavailable
from wayline.common.sql import DATABASE_DOWN, Database, Transaction, migrate
from wayline_gateway.model import (
    LIMIT_NAMES,
    ApiKeyRecord,
    KeyState,
    Limits,
    QuotaRecord,
    TenantRecord,
    TenantState,
)
from wayline_gateway.store.schema import MIGRATIONS

__all__ = ["AdminStore"]

_TENANT_COLUMNS = "tenant_id, display_name, state, create_time, update_time, version"
_KEY_COLUMNS = (
    "tenant_id, key_id, display_name, scopes, digest, key_prefix, create_time, expire_time, revoke_time,"
    " last_use_time, rotated_from, rotated_to"
)
_LIMIT_COLUMNS = ", ".join(LIMIT_NAMES)


def _tenant(row: tuple[Any, ...]) -> TenantRecord:
    tenant_id, display_name, state, create_time, update_time, version = row
    return TenantRecord(tenant_id, display_name, TenantState(state), create_time, update_time, version)


def _tenant_values(tenant: TenantRecord) -> tuple[Any, ...]:
    return (
        tenant.tenant_id,
        tenant.display_name,
        tenant.state.value,
        tenant.create_time,
        tenant.update_time,
        tenant.version,
    )


def _key(row: tuple[Any, ...]) -> ApiKeyRecord:
    (tenant_id, key_id, display_name, scopes, digest, prefix, create, expire, revoke, used, src, dst) = row
    return ApiKeyRecord(
        tenant_id,
        key_id,
        display_name,
        frozenset(s for s in scopes.split(",") if s),
        digest,
        prefix,
        create,
        expire,
        revoke,
        used,
        src,
        dst,
    )


def _key_row(key: ApiKeyRecord) -> tuple[Any, ...]:
    return (
        key.tenant_id,
        key.key_id,
        key.display_name,
        ",".join(sorted(key.scopes)),
        key.digest,
        key.key_prefix,
        key.create_time,
        key.expire_time,
        key.revoke_time,
        key.last_use_time,
        key.rotated_from,
        key.rotated_to,
    )


def _limits(values: Iterable[Any]) -> Limits:
    rps, rburst, eps, eburst, concurrent = values
    return Limits(
        None if rps is None else float(rps),
        None if rburst is None else int(rburst),
        None if eps is None else float(eps),
        None if eburst is None else int(eburst),
        None if concurrent is None else int(concurrent),
    )


def _tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"tenant 'tenants/{tenant_id}' does not exist", reason="TENANT_NOT_FOUND")


def _key_not_found(tenant_id: str, key_id: str) -> NotFound:
    return NotFound(
        f"API key 'tenants/{tenant_id}/apiKeys/{key_id}' does not exist", reason="API_KEY_NOT_FOUND"
    )


class AdminStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        try:
            with self._db.transaction() as tx:
                yield tx
        except DATABASE_DOWN as down:
            raise Unavailable(
                "the gateway's key store cannot be reached; retry with backoff", retry_after=1.0
            ) from down

    def migrate(self) -> int:
        return migrate(self._db, "gateway", MIGRATIONS)

    # Tenants

    def create_tenant(self, tenant: TenantRecord) -> TenantRecord:
        with self._transaction() as tx:
            taken = tx.execute(
                "SELECT 1 FROM tenants WHERE tenant_id = ? UNION ALL"
                " SELECT 1 FROM deleted_tenants WHERE tenant_id = ?",
                (tenant.tenant_id, tenant.tenant_id),
            )
            if taken:
                raise AlreadyExists(
                    f"tenant id '{tenant.tenant_id}' is taken (or was a deleted tenant's); choose another",
                    reason="TENANT_EXISTS",
                )
            tx.execute(
                f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                _tenant_values(tenant),
            )
        return tenant

    def ensure_tenant(self, tenant: TenantRecord) -> TenantRecord:
        """The tenant as stored, created as given when missing (the operator tenant at start)."""
        with self._transaction() as tx:
            tx.execute(
                f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id) DO NOTHING",
                _tenant_values(tenant),
            )
            return _tenant(self._tenant_row(tx, tenant.tenant_id))

    @staticmethod
    def _tenant_row(tx: Transaction, tenant_id: str) -> tuple[Any, ...]:
        rows = tx.execute(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE tenant_id = ?", (tenant_id,))
        if not rows:
            raise _tenant_not_found(tenant_id)
        return rows[0]

    def tenant(self, tenant_id: str) -> TenantRecord:
        with self._transaction() as tx:
            return _tenant(self._tenant_row(tx, tenant_id))

    def tenants(self, after: str, limit: int) -> tuple[list[TenantRecord], int]:
        """Tenants ordered by id after `after`, at most `limit`; and how many exist."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE tenant_id > ? ORDER BY tenant_id LIMIT ?",
                (after, limit),
            )
            total = tx.execute("SELECT COUNT(*) FROM tenants")[0][0]
        return [_tenant(r) for r in rows], int(total)

    def update_tenant(
        self,
        tenant_id: str,
        changes: Mapping[str, Any],
        expected_version: int | None,
        now: int,
    ) -> TenantRecord:
        """Apply `changes` (display_name, state) to the tenant; ABORTED when its version moved."""
        with self._transaction() as tx:
            current = _tenant(self._tenant_row(tx, tenant_id))
            if expected_version is not None and current.version != expected_version:
                raise Aborted(
                    f"tenant '{current.name}' changed since it was read; read it again and retry",
                    reason="ETAG_MISMATCH",
                )
            display_name = changes.get("display_name", current.display_name)
            state: TenantState = changes.get("state", current.state)
            tx.execute(
                "UPDATE tenants SET display_name = ?, state = ?, update_time = ?, version = version + 1"
                " WHERE tenant_id = ?",
                (display_name, state.value, now, tenant_id),
            )
            return _tenant(self._tenant_row(tx, tenant_id))

    def delete_tenant(self, tenant_id: str, now: int) -> TenantRecord:
        """Remove a suspended tenant, its keys and quotas; its id stays reserved."""
        with self._transaction() as tx:
            current = _tenant(self._tenant_row(tx, tenant_id))
            if current.state is not TenantState.SUSPENDED:
                raise FailedPrecondition(
                    f"tenant '{current.name}' is active: suspend it (UpdateTenant, state "
                    "TENANT_STATE_SUSPENDED) before deleting it",
                    reason="TENANT_NOT_SUSPENDED",
                )
            for table in ("api_keys", "quotas", "tenants"):
                tx.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant_id,))
            tx.execute("INSERT INTO deleted_tenants (tenant_id, delete_time) VALUES (?, ?)", (tenant_id, now))
        return current

    # API keys

    def create_key(self, key: ApiKeyRecord) -> ApiKeyRecord:
        with self._transaction() as tx:
            self._tenant_row(tx, key.tenant_id)
            tx.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _key_row(key),
            )
        return key

    def key(self, tenant_id: str, key_id: str) -> ApiKeyRecord:
        with self._transaction() as tx:
            return self._key(tx, tenant_id, key_id)

    @staticmethod
    def _key(tx: Transaction, tenant_id: str, key_id: str) -> ApiKeyRecord:
        rows = tx.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? AND key_id = ?", (tenant_id, key_id)
        )
        if not rows:
            raise _key_not_found(tenant_id, key_id)
        return _key(rows[0])

    def key_by_digest(self, digest: str) -> tuple[ApiKeyRecord, TenantState] | None:
        """The key whose secret has this digest, with its tenant's state; None when there is none."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {', '.join('k.' + c.strip() for c in _KEY_COLUMNS.split(','))}, t.state"
                " FROM api_keys k JOIN tenants t ON t.tenant_id = k.tenant_id WHERE k.digest = ?",
                (digest,),
            )
        if not rows:
            return None
        return _key(rows[0][:-1]), TenantState(rows[0][-1])

    def keys(
        self, tenant_id: str, *, now: int, show_inactive: bool, before: tuple[int, str] | None, limit: int
    ) -> tuple[list[ApiKeyRecord], int]:
        """A tenant's keys, the newest first, after the (create_time, key_id) cursor `before`; and how many
        match."""
        accepted = (
            "" if show_inactive else " AND revoke_time IS NULL AND (expire_time IS NULL OR expire_time > ?)"
        )
        accepted_params: tuple[Any, ...] = () if show_inactive else (now,)
        cursor = ""
        cursor_params: tuple[Any, ...] = ()
        if before is not None:
            cursor = " AND (create_time < ? OR (create_time = ? AND key_id < ?))"
            cursor_params = (before[0], before[0], before[1])
        with self._transaction() as tx:
            self._tenant_row(tx, tenant_id)
            rows = tx.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?{accepted}{cursor}"
                " ORDER BY create_time DESC, key_id DESC LIMIT ?",
                (tenant_id, *accepted_params, *cursor_params, limit),
            )
            total = tx.execute(
                f"SELECT COUNT(*) FROM api_keys WHERE tenant_id = ?{accepted}",
                (tenant_id, *accepted_params),
            )[0][0]
        return [_key(r) for r in rows], int(total)

    def revoke_key(self, tenant_id: str, key_id: str, now: int, caller_key_id: str) -> ApiKeyRecord:
        """Revoke a key; refuses to revoke the caller's own key when it is the tenant's last admin key."""
        with self._transaction() as tx:
            key = self._key(tx, tenant_id, key_id)
            if key.revoke_time is not None:
                return key
            if key_id == caller_key_id and "admin" in key.scopes:
                others = [
                    other
                    for other in (
                        _key(r)
                        for r in tx.execute(
                            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? AND key_id <> ?",
                            (tenant_id, key_id),
                        )
                    )
                    if "admin" in other.scopes and other.accepted(now)
                ]
                if not others:
                    raise FailedPrecondition(
                        f"'{key.name}' is the tenant's last active admin key and the one making this call: "
                        "create another admin key first",
                        reason="LAST_ADMIN_KEY",
                    )
            tx.execute(
                "UPDATE api_keys SET revoke_time = ? WHERE tenant_id = ? AND key_id = ?",
                (now, tenant_id, key_id),
            )
            return self._key(tx, tenant_id, key_id)

    def rotate_key(
        self, tenant_id: str, key_id: str, replacement: ApiKeyRecord, old_expire_time: int, now: int
    ) -> tuple[ApiKeyRecord, ApiKeyRecord]:
        """Store `replacement` (with the old key's quota) and let the old key expire at `old_expire_time`
        (revoked at once when that is `now`)."""
        with self._transaction() as tx:
            old = self._key(tx, tenant_id, key_id)
            if old.state(now) is not KeyState.ACTIVE:
                raise FailedPrecondition(
                    f"'{old.name}' is {old.state(now).value}: only an active key can be rotated",
                    reason="API_KEY_NOT_ACTIVE",
                )
            tx.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _key_row(replacement),
            )
            if old_expire_time <= now:
                tx.execute(
                    "UPDATE api_keys SET revoke_time = ?, rotated_to = ? WHERE tenant_id = ? AND key_id = ?",
                    (now, replacement.key_id, tenant_id, key_id),
                )
            else:
                tx.execute(
                    "UPDATE api_keys SET expire_time = ?, rotated_to = ? WHERE tenant_id = ? AND key_id = ?",
                    (old_expire_time, replacement.key_id, tenant_id, key_id),
                )
            tx.execute(
                f"INSERT INTO quotas (tenant_id, key_id, {_LIMIT_COLUMNS}, update_time, version)"
                f" SELECT tenant_id, ?, {_LIMIT_COLUMNS}, ?, 1 FROM quotas"
                " WHERE tenant_id = ? AND key_id = ?",
                (replacement.key_id, now, tenant_id, key_id),
            )
            return self._key(tx, tenant_id, replacement.key_id), self._key(tx, tenant_id, key_id)

    def record_uses(self, uses: Mapping[tuple[str, str], int]) -> None:
        """Set keys' last use times (already rounded to the minute); never moves one back."""
        if not uses:
            return
        with self._transaction() as tx:
            tx.executemany(
                "UPDATE api_keys SET last_use_time = ? WHERE tenant_id = ? AND key_id = ?"
                " AND (last_use_time IS NULL OR last_use_time < ?)",
                [(when, tenant, key, when) for (tenant, key), when in uses.items()],
            )

    # Quotas

    def quota(self, tenant_id: str, key_id: str) -> QuotaRecord | None:
        """The limits set on the tenant (key_id '') or key; None when none were ever set. NOT_FOUND when the
        tenant or key does not exist."""
        with self._transaction() as tx:
            self._tenant_row(tx, tenant_id)
            if key_id:
                self._key(tx, tenant_id, key_id)
            rows = tx.execute(
                f"SELECT {_LIMIT_COLUMNS}, update_time, version FROM quotas"
                " WHERE tenant_id = ? AND key_id = ?",
                (tenant_id, key_id),
            )
        if not rows:
            return None
        return QuotaRecord(tenant_id, key_id, _limits(rows[0][:5]), rows[0][5], rows[0][6])

    def set_quota(
        self, tenant_id: str, key_id: str, limits: Limits, expected_version: int | None, now: int
    ) -> QuotaRecord:
        with self._transaction() as tx:
            self._tenant_row(tx, tenant_id)
            if key_id:
                self._key(tx, tenant_id, key_id)
            rows = tx.execute(
                "SELECT version FROM quotas WHERE tenant_id = ? AND key_id = ?", (tenant_id, key_id)
            )
            version = int(rows[0][0]) if rows else 0
            if expected_version is not None and expected_version != version:
                raise Aborted(
                    "the quota changed since it was read; read it again and retry", reason="ETAG_MISMATCH"
                )
            values = tuple(getattr(limits, name) for name in LIMIT_NAMES)
            tx.execute(
                f"INSERT INTO quotas (tenant_id, key_id, {_LIMIT_COLUMNS}, update_time, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key_id) DO UPDATE SET"
                f" {', '.join(f'{n} = excluded.{n}' for n in LIMIT_NAMES)},"
                " update_time = excluded.update_time, version = excluded.version",
                (tenant_id, key_id, *values, now, version + 1),
            )
        return QuotaRecord(tenant_id, key_id, limits, now, version + 1)

    def all_limits(self) -> dict[tuple[str, str], Limits]:
        """Every tenant's and key's set limits, for the quota gate's cache."""
        with self._transaction() as tx:
            rows = tx.execute(f"SELECT tenant_id, key_id, {_LIMIT_COLUMNS} FROM quotas")
        return {(r[0], r[1]): _limits(r[2:]) for r in rows}
