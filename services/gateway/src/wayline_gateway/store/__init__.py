"""The gateway's tables: tenants, API keys (by digest), quotas — SQLite embedded, PostgreSQL in production."""
