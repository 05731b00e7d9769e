"""The flows runtime's store on each engine, empty and migrated: SQLite embedded, and a fresh schema of the
tests' PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.postgres_server import create_schema
from wayline.common.sql import open_database
from wayline_orchestrator.flows.runtime import RuntimeStore

__all__ = ["store"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeStore]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    db = open_database(url or None, tmp_path / "orchestrator.db")
    runtime = RuntimeStore(db)
    runtime.migrate()
    yield runtime
    db.close()
