"""BatchGetPersonProperties over gRPC on the suite's journeys server (chDB): each answer is
GetPersonProperties' answer for the same ref and keys (plain persons, layered identify events and ties, a
merge's survivor and absorbed person, strangers, persons without traits, repeats), in the request's order;
tenants apart; every malformed field refused at once; 500 persons in one call. And on a store of its own:
two statements at most, whatever the number of persons."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.journeys.conftest import T0, Journeys, field_violations, override, stored_record
from tests.journeys.person_support import (
    CountedStatements,
    Person,
    identify,
    person,
    person_ref,
    properties,
)
from tests.journeys.segments_support import event
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.overrides import PersonOverride
from wayline_journeys.store import JourneyStore

NOW = datetime.now(UTC).replace(microsecond=0)


def batch(journeys: Journeys, persons: Sequence[Person], *keys: str) -> list[pb.GetPersonPropertiesResponse]:
    request = pb.BatchGetPersonPropertiesRequest(persons=[person_ref(p) for p in persons], keys=keys)
    response: pb.BatchGetPersonPropertiesResponse = journeys.stub.BatchGetPersonProperties(
        request, metadata=journeys.metadata, timeout=30
    )
    return list(response.persons)


def as_dict(answer: pb.GetPersonPropertiesResponse) -> dict[str, Any]:
    return json_format.MessageToDict(answer.properties)


def test_batch_get_person_properties_answers_each_person_as_get_person_properties(journeys: Journeys) -> None:
    plain, layered, survivor, absorbed, quiet, unknown = (person() for _ in range(6))
    older = identify(layered, NOW - timedelta(days=2), plan="free", tier=1)
    newer = identify(layered, NOW - timedelta(days=1), plan="pro")
    low, high = identify(layered, NOW, seats=5), identify(layered, NOW, seats=9)  # a tie: the larger id wins
    low.event_id, high.event_id = (
        "00000000-0000-4000-8000-000000000002",
        "f0000000-0000-4000-8000-000000000002",
    )
    journeys.write(
        identify(plain, NOW - timedelta(days=1), plan="free", city="Paris"),
        older,
        newer,
        high,
        low,
        identify(absorbed, NOW - timedelta(days=3), first_name="Ada", plan="team"),
        identify(survivor, NOW - timedelta(days=1), plan="pro"),
        event(quiet, "Viewed", NOW),  # events, but no identify event
    )
    journeys.apply(override(absorbed, survivor, 1))
    stranger = ("email", f"{uuid.uuid4().hex}@example.com")
    refs: list[Person] = [
        plain,
        layered,
        survivor,
        absorbed,
        stranger,
        quiet,
        plain,  # named twice: answered twice
        ("user_id", f"u-{layered}"),
        unknown,
    ]
    expected: list[tuple[str, dict[str, Any]]] = [
        (plain, {"plan": "free", "city": "Paris"}),
        (layered, {"plan": "pro", "tier": 1, "seats": 9}),
        (survivor, {"plan": "pro", "first_name": "Ada"}),  # the absorbed person's traits count for them
        (absorbed, {}),  # their traits moved to the survivor
        ("", {}),
        (quiet, {}),
        (plain, {"plan": "free", "city": "Paris"}),
        (layered, {"plan": "pro", "tier": 1, "seats": 9}),
        (unknown, {}),
    ]
    every = batch(journeys, refs)
    assert [(a.person_id, as_dict(a)) for a in every] == expected
    assert every[1].sources["seats"].event_id == high.event_id
    assert every[1].sources["tier"].event_id == older.event_id
    asked = batch(journeys, refs, "plan", "seats", "first_name", "nickname")
    keys = {"plan", "seats", "first_name"}
    assert [(a.person_id, as_dict(a)) for a in asked] == [
        (p, {k: v for k, v in traits.items() if k in keys}) for p, traits in expected
    ]
    for ref, from_every, from_asked in zip(refs, every, asked, strict=True):
        assert from_every == properties(journeys, ref), ref  # properties and sources alike
        assert from_asked == properties(journeys, ref, "plan", "seats", "first_name", "nickname"), ref


def test_batch_get_person_properties_keeps_tenants_apart(journeys: Journeys) -> None:
    buyer, merged = person(), person()
    journeys.write(
        identify(buyer, NOW, plan="pro"), identify(merged, NOW - timedelta(days=1), first_name="Ada")
    )
    journeys.apply(override(merged, buyer, 1))
    other = journeys.for_tenant(f"tenant-{uuid.uuid4().hex[:10]}")
    other.write(identify(buyer, NOW - timedelta(days=1), city="Oslo"))
    assert [as_dict(a) for a in batch(journeys, [buyer])] == [{"plan": "pro", "first_name": "Ada"}]
    assert [(a.person_id, as_dict(a)) for a in batch(other, [buyer, merged])] == [
        (buyer, {"city": "Oslo"}),  # neither the first tenant's traits nor its merge
        (merged, {}),
    ]


def test_batch_get_person_properties_answers_500_persons_in_one_call(journeys: Journeys) -> None:
    """A page of a flow's entries: 500 persons written in one call, ten of them survivors of a merge, read in
    one call in an order of the caller's (reversed), each with their own traits."""
    persons = [person() for _ in range(500)]
    absorbed = {p: person() for p in persons[:10]}
    journeys.write(
        *(identify(p, NOW - timedelta(hours=1), rank=i, plan="free") for i, p in enumerate(persons)),
        *(identify(a, NOW - timedelta(hours=2), nickname=f"n-{s}") for s, a in absorbed.items()),
    )
    journeys.apply(*(override(a, s, i + 1) for i, (s, a) in enumerate(absorbed.items())))
    answers = batch(journeys, persons[::-1], "rank", "nickname")
    assert len(answers) == 500
    expected = [
        (p, {"rank": i} | ({"nickname": f"n-{p}"} if p in absorbed else {})) for i, p in enumerate(persons)
    ][::-1]
    assert [(a.person_id, as_dict(a)) for a in answers] == expected


def test_batch_person_properties_take_at_most_two_statements(store: JourneyStore) -> None:
    """One statement as stored for every person; a second, through the overrides, only when an override
    names one of them, whatever the number of persons."""
    persons = [f"p-{i}" for i in range(200)]
    traits = [(p, {"rank": i}) for i, p in enumerate(persons)] + [("gone", {"nickname": "Ada"})]
    records = [stored_record(p, T0, ("user_id", p), json.dumps(t)) for p, t in traits]
    store.write("acme", [replace(r, type="identify") for r in records])
    read = CountedStatements(lambda: store.client)
    found = read.properties_of("acme", persons[:150], ["rank", "nickname"])
    assert ({p: t["rank"].value for p, t in found.items()}, read.statements) == (
        {p: i for i, p in enumerate(persons[:150])},
        1,
    )
    store.overrides.apply("acme", [PersonOverride("gone", persons[7], 1)])
    read.statements = 0
    found = read.properties_of("acme", persons, ["rank", "nickname"])
    assert ({p: len(t) for p, t in found.items()}, read.statements) == (
        {p: 2 if p == persons[7] else 1 for p in persons},
        2,
    )
    assert found[persons[7]]["nickname"].value == "Ada"


def test_batch_get_person_properties_refuses_malformed_requests(journeys: Journeys) -> None:
    ada = event_pb2.PersonRef(person_id="ada")
    half = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="email"))
    cases = [
        (pb.BatchGetPersonPropertiesRequest(keys=["plan"]), {"persons": "REQUIRED"}),
        (pb.BatchGetPersonPropertiesRequest(persons=[ada] * 1001), {"persons": "OUT_OF_RANGE"}),
        (pb.BatchGetPersonPropertiesRequest(persons=[ada], keys=["k"] * 101), {"keys": "OUT_OF_RANGE"}),
        (pb.BatchGetPersonPropertiesRequest(persons=[ada], keys=["plan", ""]), {"keys[1]": "REQUIRED"}),
        (
            pb.BatchGetPersonPropertiesRequest(persons=[ada, ada, event_pb2.PersonRef(), half], keys=[""]),
            {"persons[2]": "REQUIRED", "persons[3].identifier": "REQUIRED", "keys[0]": "REQUIRED"},
        ),
    ]
    for request, expected in cases:
        with pytest.raises(grpc.RpcError) as raised:
            journeys.stub.BatchGetPersonProperties(request, metadata=journeys.metadata, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == expected
