"""The gateway: the one public door of the suite (API keys, tenants, quotas, routing)."""
