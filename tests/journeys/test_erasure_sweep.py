"""The sweep for an erased person's events stored after their erasure (erasure_sweep.py), on a real chDB
store: what ingest resolved to the person before the erasure and delivered after it is erased, what it
received after the erasure is not, nor are other persons' events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from structlog.testing import capture_logs

from tests.journeys.conftest import T0, new_person, stored_record
from wayline_journeys.erasure_sweep import LateEventSweep
from wayline_journeys.erasures import PersonToErase
from wayline_journeys.events import EventRecord, TimelineQuery
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.erased_persons import ClickHouseErasedPersons

TENANT = "erasure-sweep"


class Suite:
    """The store, the changes that erase and remember, and a sweep called by hand (`window` seconds)."""

    def __init__(self, store: JourneyStore, window: float = 900.0) -> None:
        self.store = store
        self.erased = ClickHouseErasedPersons(store)
        self.changes = PersonChanges(store, store.overrides, self.erased)
        self.sweep = LateEventSweep(self.erased, self.changes.erase_again, interval=0, window=window)

    def write(self, *events: EventRecord) -> None:
        self.store.write(TENANT, list(events))

    def timeline(self, person: str) -> list[str]:
        return [r.event_id for r in self.store.timeline(TimelineQuery(tenant=TENANT, person_id=person))]


@pytest.fixture
def suite(fresh_database: Callable[[], Client]) -> Iterator[Suite]:
    store = JourneyStore(fresh_database)
    store.open()
    yield Suite(store)
    store.close()


def test_a_late_event_of_an_erased_person_is_erased_and_what_came_after_the_erasure_stays(
    suite: Suite,
) -> None:
    person, bystander = new_person(), new_person()
    suite.write(stored_record(person, T0, ("user_id", "p")))
    suite.changes.erase(TENANT, [PersonToErase(person)])
    assert suite.sweep.sweep() == 0  # nothing of the person is stored again

    late = stored_record(person, T0 + timedelta(minutes=1), ("user_id", "p"))  # received before the erasure
    new = stored_record(person, datetime.now(UTC) + timedelta(seconds=1), ("user_id", "p"))
    other = stored_record(bystander, T0, ("user_id", "b"))
    suite.write(late, new, other)
    with capture_logs() as logs:
        assert suite.sweep.sweep() == 1

    assert suite.timeline(person) == [new.event_id]
    assert suite.timeline(bystander) == [other.event_id]
    swept = [e for e in logs if e["event"] == "journeys.erased_events_stored_after_the_erasure"]
    assert [(e["tenant"], e["person_id"], e["events"]) for e in swept] == [(TENANT, person, 1)]
    assert suite.sweep.sweep() == 0  # the new event is the person's own: every later sweep leaves it


def test_the_sweep_looks_only_at_erasures_within_its_window(suite: Suite) -> None:
    recent, long_ago = new_person(), new_person()
    suite.changes.erase(TENANT, [PersonToErase(recent)])
    suite.store.insert(
        "erased_persons",
        [(TENANT, long_ago, datetime.now(UTC) - timedelta(hours=1))],
        ("tenant_id", "person_id", "erased_at"),
        "an erasure of an hour ago",
    )
    suite.write(
        stored_record(recent, T0, ("user_id", "r")),
        stored_record(long_ago, T0, ("user_id", "l")),
    )

    assert suite.sweep.sweep() == 1
    assert suite.timeline(recent) == []
    assert len(suite.timeline(long_ago)) == 1  # an hour after its erasure no resolution of ingest is reused


def test_events_an_override_maps_to_someone_else_are_not_the_erased_persons(suite: Suite) -> None:
    """The erased person's id is still on events a split gave another person: they stay."""
    person, split_off = new_person(), new_person()
    kept = stored_record(person, T0, ("email", "e@x.y"))
    suite.write(kept)
    suite.changes.apply(TENANT, [PersonOverride(person, split_off, 1, "email", "e@x.y")])
    suite.changes.erase(TENANT, [PersonToErase(person)])

    assert suite.sweep.sweep() == 0
    assert suite.timeline(split_off) == [kept.event_id]
