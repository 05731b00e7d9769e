"""A real PostgreSQL server for the tests, started once per session (tools/postgres_server.py).

Stores that run on PostgreSQL in production are tested against the real engine (not SQLite pretending, not a
mock). Missing binaries fail the tests that need them with a message saying what to install: silently
skipping would let a whole engine go untested. `.ci/run` installs the package on CI.

Isolation: the server is shared by the session, so a test that needs an empty store takes one from
`fresh_postgres_url` (a schema of its own with a unique name, which the URL's connections are confined to),
or keeps to tenants of its own. Schemas, not databases: a CREATE DATABASE costs 50-130 ms here and hundreds
of them took the server 17 s to remove at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.postgres_server import PostgresUnavailable, create_schema, temporary_postgres
from wayline.common.sql import Database, open_database

__all__ = ["create_schema", "database", "fresh_postgres_url", "postgres_url"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a superuser connection to a fresh PostgreSQL server that lives for the test session."""
    try:
        server = temporary_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """The URL of an empty schema of its own for one test (the server is the session's)."""
    return create_schema(postgres_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty relational store of each engine in turn: every test taking it runs on SQLite and on a real
    PostgreSQL."""
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else None
    db = open_database(url, tmp_path / "store.db")
    yield db
    db.close()
