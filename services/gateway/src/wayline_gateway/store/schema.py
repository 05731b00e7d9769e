"""The gateway's tables, as versioned migrations (wayline.common.sql.migrate), the same SQL on SQLite and
PostgreSQL. Times are microseconds since the epoch in BIGINT columns.

`api_keys.digest` is the SHA-256 of the secret (hex) and unique: the authenticator finds a key by it.
`deleted_tenants` keeps the ids of deleted tenants so that no new tenant inherits the data the services still
file under an old id.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE tenants (tenant_id TEXT NOT NULL PRIMARY KEY, display_name TEXT NOT NULL,"
        " state TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL,"
        " version BIGINT NOT NULL)",
        "CREATE TABLE deleted_tenants (tenant_id TEXT NOT NULL PRIMARY KEY, delete_time BIGINT NOT NULL)",
        "CREATE TABLE api_keys (tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, display_name TEXT NOT NULL,"
        " scopes TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, key_prefix TEXT NOT NULL,"
        " create_time BIGINT NOT NULL, expire_time BIGINT, revoke_time BIGINT, last_use_time BIGINT,"
        " rotated_from TEXT NOT NULL, rotated_to TEXT NOT NULL, PRIMARY KEY (tenant_id, key_id))",
        "CREATE INDEX api_keys_by_time ON api_keys (tenant_id, create_time, key_id)",
        # One row per tenant (key_id '') or key with limits set; a NULL limit is inherited.
        "CREATE TABLE quotas (tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, requests_per_second DOUBLE"
        " PRECISION, requests_burst BIGINT, events_per_second DOUBLE PRECISION, events_burst BIGINT,"
        " max_concurrent_requests BIGINT, update_time BIGINT NOT NULL, version BIGINT NOT NULL,"
        " PRIMARY KEY (tenant_id, key_id))",
    ),
)
