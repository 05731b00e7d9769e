"""The person-override store on its own: what only a race over the gRPC surface could show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.journeys.conftest import T0, stored_record
from wayline.common.server import Server
from wayline_journeys.events import EventRecord, TimelineQuery
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore, PersonOverrideStore, connect_clickhouse
from wayline_journeys.store.named_persons import NamedPersons


@pytest.fixture
def overrides(journeys_server: Server, chdb_path: Path) -> Iterator[PersonOverrideStore]:
    # The journeys server owns the process's one chDB engine; this store opens its own database in it.
    database = f"test_{uuid.uuid4().hex[:8]}"
    events = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    events.open()
    yield events.overrides
    events.client.command(f"DROP DATABASE IF EXISTS {database}")
    events.close()


def test_forgetting_keeps_a_version_recorded_after_the_mapping_was_read(
    overrides: PersonOverrideStore,
) -> None:
    overrides.apply("acme", [PersonOverride("merged", "person", 1), PersonOverride("other", "person", 2)])
    seen = overrides.mapping_for_person("acme", "person")
    # Meanwhile identity moves `other` elsewhere; erasing `person` must not lose that newer override.
    overrides.apply("acme", [PersonOverride("other", "elsewhere", 3)])

    assert overrides.forget_pointing_to("acme", {"person"}, seen) == 2

    assert overrides.mapping_for_person("acme", "person").overrides == ()
    (kept,) = overrides.mapping_for_person("acme", "elsewhere").overrides
    assert (kept.person_id, kept.override_person_id, kept.version) == ("other", "elsewhere", 3)


@pytest.fixture
def two_replicas(journeys_server: Server, chdb_path: Path) -> Iterator[tuple[JourneyStore, JourneyStore]]:
    """Two stores on one database, as two journeys replicas on one ClickHouse: each with its own memory."""
    database = f"test_{uuid.uuid4().hex[:8]}"
    replicas = (
        JourneyStore(lambda: connect_clickhouse("", database, chdb_path)),
        JourneyStore(lambda: connect_clickhouse("", database, chdb_path)),
    )
    for replica in replicas:
        replica.open()
    yield replicas
    replicas[0].client.command(f"DROP DATABASE IF EXISTS {database}")
    for replica in replicas:
        replica.close()


def _event(person: str, minute: int, identifier: str) -> EventRecord:
    return stored_record(person, T0 + timedelta(minutes=minute), ("anonymous_id", identifier))


def _page(store: JourneyStore, person: str) -> list[tuple[str, str]]:
    page = store.timeline_page(TimelineQuery(tenant="acme", person_id=person))
    return [(e.event_id, e.person_id) for e in page.events]


def test_a_replica_that_did_not_record_the_overrides_reads_the_same_timelines(
    two_replicas: tuple[JourneyStore, JourneyStore],
) -> None:
    recorder, other = two_replicas
    events = [
        _event("anon", 0, "cookie-1"),
        _event("anon", 1, "cookie-1"),
        _event("user", 2, "cookie-2"),
        _event("split", 3, "cookie-3"),
        _event("split", 4, "cookie-4"),
        _event("bystander", 5, "cookie-5"),
    ]
    recorder.write("acme", events)
    # A merge, and an unmerge that moves only the events carrying one identifier.
    unmerge = PersonOverride("split", "elsewhere", 2, "anonymous_id", "cookie-4")
    recorder.overrides.apply("acme", [PersonOverride("anon", "user", 1), unmerge])
    # The recorder now reads these persons the exact way at once; the other replica first as if unmerged.
    assert recorder.overrides.named.named("acme", "user")
    assert not other.overrides.named.named("acme", "user")

    expected = {
        "user": [(events[0].event_id, "user"), (events[1].event_id, "user"), (events[2].event_id, "user")],
        "anon": [],
        "split": [(events[3].event_id, "split")],
        "elsewhere": [(events[4].event_id, "elsewhere")],
        "bystander": [(events[5].event_id, "bystander")],
    }
    for person, page in expected.items():
        assert _page(recorder, person) == page, person
        assert _page(other, person) == page, person
    # Having found the override rows, the other replica skips the first read from now on, with the same pages.
    assert other.overrides.named.named("acme", "user")
    assert not other.overrides.named.named("acme", "bystander")
    for person, page in expected.items():
        assert _page(other, person) == page, person


def test_a_person_wrongly_noted_as_named_still_reads_their_own_page(
    two_replicas: tuple[JourneyStore, JourneyStore],
) -> None:
    store, _ = two_replicas
    events = [_event("bystander", 0, "cookie-1"), _event("bystander", 1, "cookie-1")]
    store.write("acme", events)
    store.overrides.named.note("acme", ["bystander", "nobody"])

    assert _page(store, "bystander") == [(e.event_id, "bystander") for e in events]
    assert _page(store, "nobody") == []


def test_named_persons_forget_the_least_recently_noted_beyond_their_capacity() -> None:
    named = NamedPersons(capacity=2)
    named.note("acme", ["a", "b"])
    named.note("acme", ["a"])  # noted again: now the most recent
    named.note("acme", ["c"])

    assert [named.named("acme", p) for p in ("a", "b", "c")] == [True, False, True]
    assert not named.named("globex", "a")
    assert len(named) == 2
