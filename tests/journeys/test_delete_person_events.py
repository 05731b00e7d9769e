"""DeletePersonEvents (right to erasure) over the real journeys server on chDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from tests.journeys.conftest import (
    Journeys,
    field_violations,
    ids,
    new_person,
    override,
    received_now,
    stored_event,
)
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.store import connect_clickhouse


@pytest.fixture
def clickhouse(chdb_path: Path) -> Iterator[Client]:
    """A direct client on the journeys server's own database, to see what is on disk."""
    client = connect_clickhouse("", "wayline", chdb_path)
    yield client
    client.close()


def test_delete_person_events_erases_every_event_read_as_the_person(journeys: Journeys) -> None:
    person, merged, split_off, bystander = new_person(), new_person(), new_person(), new_person()
    own = journeys.write(stored_event(person, ("user_id", "p"), minute=0))
    via_merge = journeys.write(stored_event(merged, ("anonymous_id", "m"), minute=1))
    mapped_away = journeys.write(stored_event(person, ("email", "e@x.y"), minute=2))
    untouched = journeys.write(stored_event(bystander, ("user_id", "b"), minute=3))
    journeys.apply(override(merged, person, 1), override(person, split_off, 2, ("email", "e@x.y")))
    assert len(journeys.timeline(person)) == 2

    deleted = journeys.delete(person)

    assert deleted == len(own) + len(via_merge) == 2
    assert journeys.timeline(person) == []
    # The merged person's event is gone, not handed back to it now that the override to `person` is erased.
    assert journeys.timeline(merged) == []
    assert journeys.timeline(identifier=("anonymous_id", "m")) == []
    # Events an override maps away belong to someone else and stay; so do other persons' events.
    assert ids(journeys.timeline(split_off)) == ids(mapped_away)
    assert ids(journeys.timeline(bystander)) == ids(untouched)


def test_delete_person_events_also_erases_events_carrying_the_persons_identifiers(journeys: Journeys) -> None:
    """A login on a device later unmerged from the person reads as the device's new person, but carries the
    person's user id: erasing the person with their identifiers takes it too."""
    person, device_owner, bystander = new_person(), new_person(), new_person()
    own = journeys.write(stored_event(person, ("user_id", "erased-u"), minute=0))
    login = journeys.write(stored_event(device_owner, ("user_id", "erased-u"), minute=1))
    untouched = journeys.write(stored_event(bystander, ("user_id", "other-u"), minute=2))

    assert journeys.delete(person, ("user_id", "erased-u")) == len(own) + len(login)
    assert journeys.timeline(device_owner) == []
    assert ids(journeys.timeline(bystander)) == ids(untouched)


def test_delete_person_events_is_idempotent(journeys: Journeys) -> None:
    person = new_person()
    journeys.write(stored_event(person, ("user_id", "p")), stored_event(person, ("user_id", "p"), minute=1))

    assert journeys.delete(person) == 2
    assert journeys.delete(person) == 0


def test_delete_person_events_forgets_the_overrides_pointing_to_the_person(journeys: Journeys) -> None:
    person, merged, other = new_person(), new_person(), new_person()
    journeys.apply(override(merged, person, 1), override(other, other, 2))

    journeys.delete(person)

    # The erased key holds no version any more, so the same override counts as new again; other keys stay.
    assert journeys.apply(override(merged, person, 1)).applied_count == 1
    assert journeys.apply(override(other, other, 2)).applied_count == 0


def test_an_event_received_before_the_erasure_and_stored_after_it_is_erased(journeys: Journeys) -> None:
    """Ingest resolved it to the person, then identity erased them, then it arrived: kept, it would bring
    back what the erasure took. The person's events received after the erasure are new and stay (a person
    whose events alone were erased keeps their id), as do other persons' and other tenants' events."""
    person, bystander = new_person(), new_person()
    journeys.write(stored_event(person, ("user_id", "p")))
    in_flight = stored_event(person, ("user_id", "p"), minute=1)  # received at T0 + 1 min, long before
    journeys.delete(person)
    elsewhere = journeys.for_tenant(f"{journeys.tenant}-other")
    elsewhere.write(in_flight)

    later = received_now(stored_event(person, ("user_id", "p"), minute=5))
    others = [
        stored_event(bystander, ("user_id", "b"), minute=2),
        received_now(stored_event(bystander, ("user_id", "b"), minute=3)),
    ]
    written = journeys.stub.WriteEvents(
        pb.WriteEventsRequest(events=[in_flight, later, *others]), metadata=journeys.metadata, timeout=10
    )
    assert written.written_count == 4

    deadline = time.monotonic() + 20  # the tests' journeys server sweeps every 0.5 s
    while ids(journeys.timeline(person)) != ids([later]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ids(journeys.timeline(person)) == ids([later])
    time.sleep(1.5)  # sweeps later, what was received after the erasure is still there
    assert ids(journeys.timeline(person)) == ids([later])
    assert ids(journeys.timeline(bystander)) == ids(others)
    assert ids(elsewhere.timeline(person)) == ids([in_flight])


def test_delete_person_events_removes_the_rows_from_disk(journeys: Journeys, clickhouse: Client) -> None:
    person = new_person()
    journeys.write(stored_event(person, ("user_id", "p")), stored_event(person, ("user_id", "p"), minute=1))
    journeys.delete(person)

    def rows_on_disk() -> int:
        # apply_deleted_mask = 0 also shows rows a lightweight DELETE has only masked.
        result = clickhouse.query(
            "SELECT count() FROM events WHERE tenant_id = {tenant:String} SETTINGS apply_deleted_mask = 0",
            parameters={"tenant": journeys.tenant},
        )
        return int(result.result_rows[0][0])

    deadline = time.monotonic() + 20
    while rows_on_disk() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rows_on_disk() == 0


def test_delete_person_events_requires_a_person_id(journeys: Journeys) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        journeys.delete("")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"person_id": "REQUIRED"}
