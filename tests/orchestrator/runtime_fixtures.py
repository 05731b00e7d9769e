"""The orchestrator's database on each engine, empty (SQLite embedded, and a fresh schema of the tests'
PostgreSQL server), and the flows runtime's store on it, migrated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.postgres_server import create_schema
from wayline.common.sql import Database, open_database
from wayline_orchestrator.flows.runtime import RuntimeStore

__all__ = ["database", "store"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    db = open_database(url or None, tmp_path / "orchestrator.db")
    yield db
    db.close()


@pytest.fixture
def store(database: Database) -> RuntimeStore:
    runtime = RuntimeStore(database)
    runtime.migrate()
    return runtime
