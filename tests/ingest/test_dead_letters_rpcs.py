"""The dead-letter RPCs: wire conversion, defaults, and the errors the contract promises, field by field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.ingest import test_dead_letters_fixtures as fixtures
from tests.ingest.test_dead_letters_fixtures import T0, Requeued, event_bytes, park, spool_requeue
from tests.pages import every_page
from wayline.common.context import CallContext, bind_call
from wayline.common.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable, WaylineError
from wayline.common.sql import Database, open_database
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import dead_letter_pb2
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline_ingest.deadletters import DeadLetterFilter, DeadLetters
from wayline_ingest.deadletters.rpcs import DeadLetterRpcs
from wayline_ingest.spool import Spool

clock, requeued = fixtures.clock, fixtures.requeued


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """SQLite only: the store's SQL runs on both engines in test_dead_letters.py; here the wire is tested."""
    db = open_database(None, tmp_path / "dead-letters.db")
    yield db
    db.close()


@pytest.fixture
def store(database: Database, requeued: Requeued, clock: fixtures.Clock) -> DeadLetters:
    dead_letters = DeadLetters(database, requeued, clock=clock)
    dead_letters.migrate()
    return dead_letters


@pytest.fixture
def rpcs(store: DeadLetters) -> Iterator[DeadLetterRpcs]:
    with bind_call(CallContext(request_id="t", method="m", tenant="acme")):
        yield DeadLetterRpcs(store)


def _fails(call: object, request: object) -> WaylineError:
    with pytest.raises(WaylineError) as caught:
        call(request, None)  # type: ignore[operator]
    return caught.value


def _fields(error: WaylineError) -> list[tuple[str, str]]:
    assert isinstance(error, InvalidArgument)
    return [(v.field, v.reason) for v in error.violations]


def test_list_dead_letters_returns_the_wire_dead_letter(rpcs: DeadLetterRpcs, store: DeadLetters) -> None:
    payload = event_bytes(name="Signed Up")
    park(store, payload, sink="decision", attempts=4)
    [record] = store.list("acme", DeadLetterFilter(), 1).dead_letters
    response = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None)
    [wire] = response.dead_letters
    assert wire.name == f"deadLetters/{record.id}"
    assert wire.sink == dead_letter_pb2.SINK_DECISION
    assert wire.state == dead_letter_pb2.DEAD_LETTER_STATE_PENDING
    assert wire.event == event_pb2.Event.FromString(payload)
    assert wire.raw_payload == payload
    assert (wire.error_code, wire.error_reason, wire.error_field) == (
        "INVALID_ARGUMENT",
        "PERSON_ID_CONFLICT",
        "events[0].properties",
    )
    assert (wire.attempt_count, wire.replay_count) == (4, 0)
    assert wire.dead_letter_time == to_timestamp(T0)
    assert not wire.HasField("replay_time")
    assert (response.total_size, response.next_page_token) == (1, "")


def test_list_dead_letters_page_size_defaults_to_50_and_caps_at_1000(
    rpcs: DeadLetterRpcs, store: DeadLetters
) -> None:
    for _ in range(1001):
        park(store, event_bytes())
    first = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None)
    assert (len(first.dead_letters), first.total_size) == (50, 1001)
    capped = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(page_size=5000), None)
    assert len(capped.dead_letters) == 1000
    rest = rpcs.ListDeadLetters(
        pb.ListDeadLettersRequest(page_size=5000, page_token=capped.next_page_token), None
    )
    assert (len(rest.dead_letters), rest.next_page_token) == (1, "")


def test_list_dead_letters_filters_by_sink_and_state(rpcs: DeadLetterRpcs, store: DeadLetters) -> None:
    park(store, event_bytes(), sink="journeys")
    park(store, event_bytes(), sink="orchestrator")
    request = pb.ListDeadLettersRequest(
        filter=dead_letter_pb2.DeadLetterFilter(
            sink=dead_letter_pb2.SINK_ORCHESTRATOR, state=dead_letter_pb2.DEAD_LETTER_STATE_PENDING
        )
    )
    [wire] = rpcs.ListDeadLetters(request, None).dead_letters
    assert wire.sink == dead_letter_pb2.SINK_ORCHESTRATOR


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (pb.ListDeadLettersRequest(page_size=-1), [("page_size", "INVALID")]),
        (pb.ListDeadLettersRequest(page_token="nope"), [("page_token", "INVALID")]),
        (
            pb.ListDeadLettersRequest(filter=dead_letter_pb2.DeadLetterFilter(sink=99)),  # type: ignore[arg-type]
            [("filter.sink", "INVALID")],
        ),
        (
            pb.ListDeadLettersRequest(filter=dead_letter_pb2.DeadLetterFilter(state=7)),  # type: ignore[arg-type]
            [("filter.state", "INVALID")],
        ),
        (
            pb.ListDeadLettersRequest(
                filter=dead_letter_pb2.DeadLetterFilter(
                    dead_letter_time_range=event_pb2.TimeRange(start=to_timestamp(T0), end=to_timestamp(T0))
                )
            ),
            [("filter.dead_letter_time_range", "INVALID")],
        ),
        (
            pb.ListDeadLettersRequest(
                filter=dead_letter_pb2.DeadLetterFilter(
                    dead_letter_time_range=event_pb2.TimeRange(end=Timestamp(seconds=253_402_300_800))
                )
            ),
            [("filter.dead_letter_time_range.end", "OUT_OF_RANGE")],
        ),
        (
            pb.ListDeadLettersRequest(
                filter=dead_letter_pb2.DeadLetterFilter(
                    dead_letter_time_range=event_pb2.TimeRange(start=Timestamp(nanos=-1))
                )
            ),
            [("filter.dead_letter_time_range.start.nanos", "OUT_OF_RANGE")],
        ),
    ],
)
def test_list_dead_letters_rejects_a_malformed_request(
    rpcs: DeadLetterRpcs, request_: pb.ListDeadLettersRequest, expected: list[tuple[str, str]]
) -> None:
    assert _fields(_fails(rpcs.ListDeadLetters, request_)) == expected


def test_replay_dead_letters_by_name_requeues_and_counts(
    rpcs: DeadLetterRpcs, store: DeadLetters, requeued: Requeued
) -> None:
    payload = event_bytes()
    park(store, payload)
    name = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None).dead_letters[0].name
    dry = rpcs.ReplayDeadLetters(pb.ReplayDeadLettersRequest(names=[name], validate_only=True), None)
    assert (dry.replayed_count, requeued.calls) == (1, [])
    done = rpcs.ReplayDeadLetters(pb.ReplayDeadLettersRequest(names=[name]), None)
    assert done.replayed_count == 1
    assert requeued.calls == [("journeys", "acme", [payload])]
    [wire] = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None).dead_letters
    assert (wire.state, wire.replay_count) == (dead_letter_pb2.DEAD_LETTER_STATE_REPLAYED, 1)
    assert wire.HasField("replay_time")


def test_replay_dead_letters_by_filter(rpcs: DeadLetterRpcs, store: DeadLetters, requeued: Requeued) -> None:
    park(store, event_bytes(), reason="A")
    park(store, event_bytes(), reason="B")
    request = pb.ReplayDeadLettersRequest(filter=dead_letter_pb2.DeadLetterFilter(error_reason="B"))
    assert rpcs.ReplayDeadLetters(request, None).replayed_count == 1
    assert len(requeued.calls) == 1


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (pb.ReplayDeadLettersRequest(), [("names", "NAMES_OR_FILTER"), ("filter", "NAMES_OR_FILTER")]),
        (
            pb.ReplayDeadLettersRequest(names=["deadLetters/a"], filter=dead_letter_pb2.DeadLetterFilter()),
            [("names", "NAMES_OR_FILTER"), ("filter", "NAMES_OR_FILTER")],
        ),
        (pb.ReplayDeadLettersRequest(names=["deadLetters/a"] * 1001), [("names", "TOO_MANY_NAMES")]),
        (pb.ReplayDeadLettersRequest(names=["deadLetters/a", "letters/b"]), [("names[1]", "INVALID_NAME")]),
    ],
)
def test_replay_dead_letters_rejects_a_bad_selection(
    rpcs: DeadLetterRpcs, request_: pb.ReplayDeadLettersRequest, expected: list[tuple[str, str]]
) -> None:
    assert _fields(_fails(rpcs.ReplayDeadLetters, request_)) == expected


def test_replay_dead_letters_of_another_tenant_is_not_found(store: DeadLetters, requeued: Requeued) -> None:
    park(store, event_bytes(), tenant="globex")
    [record] = store.list("globex", DeadLetterFilter(), 1).dead_letters
    with bind_call(CallContext(request_id="t", method="m", tenant="acme")):
        error = _fails(
            DeadLetterRpcs(store).ReplayDeadLetters,
            pb.ReplayDeadLettersRequest(names=[f"deadLetters/{record.id}"]),
        )
    assert isinstance(error, NotFound)
    assert error.reason == "DEAD_LETTER_NOT_FOUND"
    assert requeued.calls == []


def test_replay_dead_letters_when_the_spool_is_closed_is_unavailable(
    database: Database, clock: fixtures.Clock, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool", ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30)
    store = DeadLetters(database, spool_requeue(spool), clock=clock)
    store.migrate()
    park(store, event_bytes())
    spool.close()
    with bind_call(CallContext(request_id="t", method="m", tenant="acme")):
        rpcs = DeadLetterRpcs(store)
        name = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None).dead_letters[0].name
        error = _fails(rpcs.ReplayDeadLetters, pb.ReplayDeadLettersRequest(names=[name]))
        [wire] = rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None).dead_letters
    assert isinstance(error, Unavailable)
    assert error.reason == "SPOOL_UNAVAILABLE"
    assert wire.state == dead_letter_pb2.DEAD_LETTER_STATE_PENDING


def test_list_dead_letters_when_the_store_is_unreachable_is_unavailable(
    requeued: Requeued, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-database"
    blocked.mkdir()  # SQLite cannot open a directory: the store is down
    store = DeadLetters(open_database(None, blocked), requeued)
    with bind_call(CallContext(request_id="t", method="m", tenant="acme")):
        error = _fails(DeadLetterRpcs(store).ListDeadLetters, pb.ListDeadLettersRequest())
    assert isinstance(error, Unavailable)
    assert error.reason == "DEAD_LETTER_STORE_UNAVAILABLE"


def test_delete_person_dead_letters_erases_and_counts(rpcs: DeadLetterRpcs, store: DeadLetters) -> None:
    park(store, event_bytes(identifiers=(("email", "ann@example.com"),)))
    park(store, event_bytes(person_id="p-ann"))
    park(store, event_bytes(identifiers=(("email", "bob@example.com"),)))
    request = pb.DeletePersonDeadLettersRequest(
        person_id="p-ann", identifiers=[event_pb2.Identifier(type="email", value="ANN@example.com")]
    )
    assert rpcs.DeletePersonDeadLetters(request, None).deleted_count == 2
    assert rpcs.DeletePersonDeadLetters(request, None).deleted_count == 0
    assert rpcs.ListDeadLetters(pb.ListDeadLettersRequest(), None).total_size == 1


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            pb.DeletePersonDeadLettersRequest(),
            [("person_id", "PERSON_REQUIRED"), ("identifiers", "PERSON_REQUIRED")],
        ),
        (
            pb.DeletePersonDeadLettersRequest(identifiers=[event_pb2.Identifier(type="email")]),
            [("identifiers[0]", "REQUIRED")],
        ),
    ],
)
def test_delete_person_dead_letters_needs_a_person(
    rpcs: DeadLetterRpcs, request_: pb.DeletePersonDeadLettersRequest, expected: list[tuple[str, str]]
) -> None:
    assert _fields(_fails(rpcs.DeletePersonDeadLetters, request_)) == expected


def test_dead_letter_rpcs_need_a_tenant(store: DeadLetters) -> None:
    rpcs = DeadLetterRpcs(store)
    with bind_call(CallContext(request_id="t", method="m")):
        for call, request in (
            (rpcs.ListDeadLetters, pb.ListDeadLettersRequest()),
            (rpcs.ReplayDeadLetters, pb.ReplayDeadLettersRequest(names=["deadLetters/a"])),
            (rpcs.DeletePersonDeadLetters, pb.DeletePersonDeadLettersRequest(person_id="p")),
        ):
            assert isinstance(_fails(call, request), Unauthenticated)


def test_list_dead_letters_ends_a_page_before_it_passes_what_a_client_receives(
    rpcs: DeadLetterRpcs, store: DeadLetters
) -> None:
    """A letter holds its event twice (parsed and raw): 100 events of 25 KB at page_size 1,000 were a 5 MB
    answer, which a gRPC client refuses by default. The page ends at about 3 MB; the token goes on, and
    every letter is listed once."""
    for number in range(100):
        event = event_pb2.Event.FromString(event_bytes(event_id=f"00000000-0000-4000-8000-{number:012}"))
        event.properties.update({"cart": "x" * 25_000})
        park(store, event.SerializeToString())
    pages = every_page(
        lambda token: rpcs.ListDeadLetters(pb.ListDeadLettersRequest(page_size=1000, page_token=token), None)
    )
    assert {page.total_size for page in pages} == {100}
    listed = [letter.event.event_id for page in pages for letter in page.dead_letters]
    assert sorted(listed) == [f"00000000-0000-4000-8000-{number:012}" for number in range(100)]
    assert len(pages) == 2
