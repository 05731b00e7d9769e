"""Identity over both of its engines: every test taking `identity` runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from wayline.common.sql import Database
from wayline.common.timestamps import to_micros
from wayline_identity.identity import Identity
from wayline_identity.model import Key, ResolutionInput

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def identity(database: Database) -> Identity:
    # With the read cache as the service runs it (it applies to SQLite only); a small one, so that tests
    # also run through its evictions.
    store = Identity(database, cache_identifiers=64)
    store.migrate()
    return store


class Events:
    """Identifier sets as the forwarder sends them: numbered event ids, one minute apart."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(
        self, *identifiers: Key, event_type: str = "track", previous: tuple[Key, ...] = ()
    ) -> ResolutionInput:
        n = next(self._counter)
        return ResolutionInput(
            f"e{n}", to_micros(T0 + timedelta(minutes=n)), event_type, identifiers, previous
        )


@pytest.fixture
def events() -> Events:
    return Events()


def partition(identity: Identity, tenant: str) -> set[frozenset[Key]]:
    """Every canonical profile's identifiers, as a set of sets."""
    profiles, _ = identity.list_profiles(
        tenant,
        limit=100_000,
        after=None,
        identifier=None,
        identifier_type="",
        last_seen=(None, None),
        first_seen=(None, None),
    )
    return {frozenset(i.identifier for i in p.identifiers) for p in profiles}
