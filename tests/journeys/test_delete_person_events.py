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
from wayline.event.v1 import event_pb2
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


def _batch(journeys: Journeys, *requests: pb.DeletePersonEventsRequest) -> list[int]:
    response: pb.BatchDeletePersonEventsResponse = journeys.stub.BatchDeletePersonEvents(
        pb.BatchDeletePersonEventsRequest(requests=requests), metadata=journeys.metadata, timeout=30
    )
    return [r.deleted_event_count for r in response.responses]


def _erase(person: str, *identifiers: tuple[str, str]) -> pb.DeletePersonEventsRequest:
    return pb.DeletePersonEventsRequest(
        person_id=person, identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers]
    )


def test_batch_delete_erases_each_person_as_delete_person_events_does(journeys: Journeys) -> None:
    """Each person as DeletePersonEvents alone would erase it (merged persons' events, events carrying the
    identifiers, the overrides pointing to the person), the counts in the request's order, an event once."""
    first, merged, second, device_owner, third, bystander = (new_person() for _ in range(6))
    journeys.write(
        stored_event(first, ("user_id", "u1"), minute=0), stored_event(first, ("user_id", "u1"), minute=1)
    )
    journeys.write(stored_event(merged, ("anonymous_id", "m"), minute=2))
    journeys.write(stored_event(second, ("user_id", "u2"), minute=3))
    journeys.write(stored_event(device_owner, ("user_id", "u2"), minute=4))  # carries the second's user id
    untouched = journeys.write(stored_event(bystander, ("user_id", "b"), minute=5))
    journeys.apply(override(merged, first, 1))

    counts = _batch(
        journeys,
        _erase(first),
        _erase(second, ("user_id", "u2")),
        _erase(third),  # nothing stored: 0
        _erase(first),  # named again: its events counted once, for the first request
    )

    assert counts == [3, 2, 0, 0]
    for person in (first, merged, second, device_owner):
        assert journeys.timeline(person) == []
    assert journeys.timeline(identifier=("anonymous_id", "m")) == []
    assert ids(journeys.timeline(bystander)) == ids(untouched)
    # The override to the first person is forgotten with its events: the merged person is not brought back.
    journeys.write(stored_event(merged, ("anonymous_id", "m2"), minute=6))
    assert len(journeys.timeline(merged)) == 1
    assert journeys.timeline(first) == []
    assert _batch(journeys, _erase(first), _erase(second, ("user_id", "u2"))) == [0, 0]  # idempotent


def test_batch_delete_checks_its_persons(journeys: Journeys) -> None:
    for requests, violations in (
        ((), {"requests": "INVALID"}),
        (tuple(_erase(f"p{i}") for i in range(1001)), {"requests": "INVALID"}),
        (
            (_erase("p"), _erase(""), _erase("q"), _erase("")),
            {
                "requests[1].person_id": "REQUIRED",
                "requests[3].person_id": "REQUIRED",
            },
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            _batch(journeys, *requests)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == violations
