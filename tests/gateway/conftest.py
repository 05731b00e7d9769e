"""The gateway's store on both of its engines: every test taking `admin` runs on SQLite and on a real
PostgreSQL."""

from __future__ import annotations

import pytest

from tests.gateway.clock import FakeClock
from wayline.common.auth import Caller
from wayline.common.sql import Database
from wayline_gateway.admin import Admin
from wayline_gateway.model import Limits
from wayline_gateway.store.admin_store import AdminStore

OPERATOR = "operator"
DEFAULTS = Limits(100.0, 200, 1000.0, 2000, 10)


@pytest.fixture
def store(database: Database) -> AdminStore:
    store = AdminStore(database)
    store.migrate()
    return store


@pytest.fixture
def wall() -> FakeClock:
    """The wall clock in microseconds, moved by hand (key expiry, overlap windows)."""
    return FakeClock(start=1_800_000_000_000_000)


@pytest.fixture
def admin(store: AdminStore, wall: FakeClock) -> Admin:
    admin = Admin(store, OPERATOR, DEFAULTS, clock=lambda: int(wall.now()))
    admin.ensure_operator_tenant()
    return admin


@pytest.fixture
def operator() -> Caller:
    return Caller(OPERATOR, frozenset({"admin", "read", "write"}), f"tenants/{OPERATOR}/apiKeys/bootstrap")


def admin_of(tenant: str, key_id: str = "k0") -> Caller:
    return Caller(tenant, frozenset({"admin"}), f"tenants/{tenant}/apiKeys/{key_id}")
