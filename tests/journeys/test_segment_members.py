"""ListSegmentMembers against a plain-Python evaluation of the conditions (tests/journeys/
conditions_reference.py) on random event logs, first as the full build computes it, then as the incremental
passes keep it after more events and a merge; GetSegmentMemberships, and the membership predicate that the
other read models use (`population_sql`)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from tests.breadth import extra, seeds
from tests.journeys.conditions_reference import T0, Event, Person, condition, generated_log, persons_of
from tests.journeys.conftest import Journeys, override
from tests.journeys.segments_support import (
    count,
    delete_all_segments,
    event,
    members_fresh_after,
    memberships,
    wait_ready,
)
from wayline.common.errors import FieldViolation
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics import Population
from wayline_journeys.conditions import Condition
from wayline_journeys.conditions_converters import person_condition
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.matching import population_sql
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    """The session's evaluator stops evaluating this test's segments once it is over."""
    yield
    delete_all_segments(journeys)


def shifted_log(rng: random.Random) -> list[Event]:
    """A generated log moved to end a day before now, its times half an hour away from now's minute, so no
    window boundary (whole hours and days before now) passes an event while the test runs."""
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    base = hour + timedelta(minutes=(now.minute + 30) % 60) - timedelta(days=201)
    return [replace(e, at=base + (e.at - T0)) for e in generated_log(rng, persons=14)]


def converted(message: condition_pb2.PersonCondition) -> Condition:
    violations: list[FieldViolation] = []
    found = person_condition(message, "condition", violations, segments=True, customer_values=True)
    assert found is not None, violations
    return found


def expected(log: list[Event], conditions: list[Condition], merged: dict[str, str]) -> list[set[str]]:
    """The members of each condition now, each event read as its current person."""
    persons = persons_of([replace(e, person=merged.get(e.person, e.person)) for e in log])
    now = datetime.now(UTC)
    return [{p for p, events in persons.items() if Person(events, now).holds(c)} for c in conditions]


@pytest.mark.parametrize("seed", seeds(*range(2)))
def test_list_segment_members_matches_the_reference(journeys: Journeys, seed: int) -> None:
    rng = random.Random(seed)
    log = shifted_log(rng)
    journeys.write(*(e.message() for e in log))
    people = sorted({e.person for e in log})
    merged = {people[0]: people[1]}
    journeys.apply(override(people[0], people[1], version=1))
    messages = [condition(rng) for _ in range(10)]
    names = [journeys.create_segment(m, f"random-{i}").name for i, m in enumerate(messages)]
    conditions = [converted(m) for m in messages]

    for name in names:
        wait_ready(journeys, name)
    built = [set(journeys.segment_members(name, page_size=3)[0]) for name in names]
    wanted = expected(log, conditions, merged)
    assert built == wanted, [
        (messages[i], built[i] ^ wanted[i]) for i in range(len(names)) if built[i] != wanted[i]
    ]
    assert extra(seed) or (any(wanted) and not all(len(w) == len(people) - 1 for w in wanted))

    # More events for some persons, dated in the past, and a second merge: the passes follow.
    later = [replace(e, event_id=e.event_id[:-4] + "beef") for e in rng.sample(log, 12)]
    later = [replace(e, person=rng.choice(people[2:])) for e in later]
    journeys.write(*(e.message() for e in later))
    merged[people[2]] = people[3]
    journeys.apply(override(people[2], people[3], version=2))
    written = datetime.now(UTC)
    updated = [set(members_fresh_after(journeys, name, written)[0]) for name in names]
    wanted = expected(log + later, conditions, merged)
    assert updated != built or extra(seed)  # the passes had something to do
    assert updated == wanted, [
        (messages[i], updated[i] ^ wanted[i]) for i in range(len(names)) if updated[i] != wanted[i]
    ]


def test_get_segment_memberships_lists_the_persons_segments(journeys: Journeys) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    email = ("email", "ann@example.com")
    journeys.write(
        event("ann", "Signed Up", at, identifier=email), event("ann", "Purchased", at, identifier=email)
    )
    for segment_id, name in (("buyers", "Purchased"), ("signups", "Signed Up"), ("churned", "Cancelled")):
        wait_ready(journeys, journeys.create_segment(count(name), segment_id).name)

    found = memberships(journeys, "ann")
    assert [m.segment for m in found.memberships] == ["segments/buyers", "segments/signups"]
    assert found.person_id == "ann"
    assert found.HasField("data_as_of")
    assert found.HasField("windows_as_of")
    by_identifier: pb.GetSegmentMembershipsResponse = journeys.stub.GetSegmentMemberships(
        pb.GetSegmentMembershipsRequest(
            person=event_pb2.PersonRef(
                identifier=event_pb2.Identifier(type="email", value="ann@example.com")
            ),
            segments=["segments/signups", "segments/churned"],
        ),
        metadata=journeys.metadata,
        timeout=10,
    )
    assert (by_identifier.person_id, [m.segment for m in by_identifier.memberships]) == (
        "ann",
        ["segments/signups"],
    )
    assert list(memberships(journeys, "nobody").memberships) == []
    for request, code in (
        (pb.GetSegmentMembershipsRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.GetSegmentMembershipsRequest(
                person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email", value="x@y.z"))
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            pb.GetSegmentMembershipsRequest(
                person=event_pb2.PersonRef(person_id="ann"), segments=["segments/gone"]
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            journeys.stub.GetSegmentMemberships(request, metadata=journeys.metadata, timeout=10)
        assert caught.value.code() == code


@pytest.fixture
def server_database(journeys_server: Server, chdb_path: Path) -> Iterator[Client]:
    """A client on the journeys server's own database (the suite's settings keep the default name)."""
    client = connect_clickhouse("", "wayline", chdb_path)
    yield client
    client.close()


def test_population_sql_selects_the_members_of_every_segment(
    journeys: Journeys, server_database: Client
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    journeys.write(
        event("both", "A", at), event("both", "B", at), event("only-a", "A", at), event("only-b", "B", at)
    )
    for name in ("A", "B"):
        wait_ready(journeys, journeys.create_segment(count(name), f"did-{name.lower()}").name)

    def selected(*segments: str) -> set[str]:
        params = SqlParams(tenant=journeys.tenant)
        predicate = population_sql(Population(segments=segments), params)
        sql = f"SELECT DISTINCT person_id FROM {current_events(params)} WHERE {predicate}"
        return {row[0] for row in server_database.query(sql, parameters=params.values).result_rows}

    assert selected("segments/did-a") == {"both", "only-a"}
    assert selected("segments/did-a", "segments/did-b") == {"both"}
    assert selected("segments/absent") == set()
    assert selected() == {"both", "only-a", "only-b"}


def test_list_segment_members_pages_by_person_id(journeys: Journeys) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    journeys.write(*(event(f"member-{i}", "A", at) for i in (3, 1, 4, 5, 2)))
    name = journeys.create_segment(count("A"), "did-a").name
    other = journeys.create_segment(count("B"), "did-b").name
    wait_ready(journeys, name)

    request = pb.ListSegmentMembersRequest(segment=name, page_size=2)
    pages: list[pb.ListSegmentMembersResponse] = []
    while not pages or pages[-1].next_page_token:
        request.page_token = pages[-1].next_page_token if pages else ""
        pages.append(journeys.stub.ListSegmentMembers(request, metadata=journeys.metadata, timeout=10))

    assert [[m.person_id for m in p.members] for p in pages] == [
        ["member-1", "member-2"],
        ["member-3", "member-4"],
        ["member-5"],
    ]
    assert {p.total_size for p in pages} == {5}
    assert all(p.status.state == segment_pb2.SEGMENT_STATE_READY for p in pages)
    for bad in (
        pb.ListSegmentMembersRequest(segment=other, page_token=pages[0].next_page_token),
        pb.ListSegmentMembersRequest(segment=name, page_token="garbage"),
        pb.ListSegmentMembersRequest(segment=name, page_size=-1),
        pb.ListSegmentMembersRequest(segment="did-a"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            journeys.stub.ListSegmentMembers(bad, metadata=journeys.metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    journeys.stub.DeleteSegment(pb.DeleteSegmentRequest(name=name), metadata=journeys.metadata, timeout=10)
    journeys.create_segment(count("A"), "did-a")
    with pytest.raises(grpc.RpcError) as caught:  # a token of the deleted lifetime
        journeys.stub.ListSegmentMembers(
            pb.ListSegmentMembersRequest(segment=name, page_token=pages[0].next_page_token),
            metadata=journeys.metadata,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
