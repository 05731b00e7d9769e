"""The person-override store on its own: what only a race over the gRPC surface could show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.common.server import Server
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore, PersonOverrideStore, connect_clickhouse


@pytest.fixture
def overrides(journeys_server: Server, chdb_path: Path) -> Iterator[PersonOverrideStore]:
    # The journeys server owns the process's one chDB engine; this store opens its own database in it.
    database = f"test_{uuid.uuid4().hex[:8]}"
    events = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    events.open()
    yield PersonOverrideStore(lambda: events.client)
    events.client.command(f"DROP DATABASE IF EXISTS {database}")
    events.close()


def test_forgetting_keeps_a_version_recorded_after_the_mapping_was_read(
    overrides: PersonOverrideStore,
) -> None:
    overrides.apply("acme", [PersonOverride("merged", "person", 1), PersonOverride("other", "person", 2)])
    seen = overrides.mapping_for_person("acme", "person")
    # Meanwhile identity moves `other` elsewhere; erasing `person` must not lose that newer override.
    overrides.apply("acme", [PersonOverride("other", "elsewhere", 3)])

    assert overrides.forget_pointing_to("acme", "person", seen) == 2

    assert overrides.mapping_for_person("acme", "person").overrides == ()
    (kept,) = overrides.mapping_for_person("acme", "elsewhere").overrides
    assert (kept.person_id, kept.override_person_id, kept.version) == ("other", "elsewhere", 3)
