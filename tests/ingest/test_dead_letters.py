"""The dead-letter store on SQLite and PostgreSQL: park, list, filter, page, replay, erase, expire."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ingest import test_dead_letters_fixtures as fixtures
from tests.ingest.test_dead_letters_fixtures import T0, Clock, Requeued, event_bytes, park, spool_requeue
from wayline.common.errors import InvalidArgument, NotFound
from wayline.common.sql import Database
from wayline.event.v1 import event_pb2
from wayline_ingest.deadletters import DeadLetterFilter, DeadLetters, DeadLetterState
from wayline_ingest.forwarder import SINK_BITS
from wayline_ingest.spool import Spool

# The shared fixtures, by the names the tests ask for.
clock, database, dead_letters, requeued, spool = (
    fixtures.clock,
    fixtures.database,
    fixtures.dead_letters,
    fixtures.requeued,
    fixtures.spool,
)


def _all(store: DeadLetters, tenant: str = "acme", **filters: object) -> list[str]:
    page = store.list(tenant, DeadLetterFilter(**filters), 1000)  # type: ignore[arg-type]
    return [record.event_id for record in page.dead_letters]


def _event_id(payload: bytes) -> str:
    return event_pb2.Event.FromString(payload).event_id


def test_park_keeps_the_failure_and_the_payload_as_parked(dead_letters: DeadLetters) -> None:
    payload = event_bytes(name="Order Completed", person_id="p-1")
    park(dead_letters, payload, sink="decision", code="INVALID_ARGUMENT", reason="BAD_PROPS", attempts=3)
    [record] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    assert (record.sink, record.event_id, record.event_name, record.person_id) == (
        "decision",
        _event_id(payload),
        "Order Completed",
        "p-1",
    )
    assert record.state is DeadLetterState.PENDING
    assert (record.error_code, record.error_reason, record.error_field) == (
        "INVALID_ARGUMENT",
        "BAD_PROPS",
        "events[0].properties",
    )
    assert record.error_message == "decision refused it"
    assert (record.attempt_count, record.replay_count, record.replay_time) == (3, 0, None)
    assert record.first_attempt_time == T0 - timedelta(minutes=1)
    assert record.dead_letter_time == T0
    assert record.payload == payload
    assert dead_letters.get("acme", record.id) == record


def test_park_again_after_a_failed_replay_returns_to_pending(dead_letters: DeadLetters, clock: Clock) -> None:
    payload = event_bytes()
    park(dead_letters, payload, attempts=2)
    [first] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    dead_letters.replay("acme", ids=[first.id])
    later = clock.advance(60)
    park(dead_letters, payload, code="FAILED_PRECONDITION", reason="STILL_BAD", attempts=3)
    [again] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    assert again.id == first.id  # one dead letter per (tenant, sink, event_id)
    assert again.state is DeadLetterState.PENDING
    assert (again.attempt_count, again.replay_count) == (5, 1)
    assert (again.error_code, again.error_reason) == ("FAILED_PRECONDITION", "STILL_BAD")
    assert again.dead_letter_time == later
    assert again.first_attempt_time == first.first_attempt_time


def test_same_event_in_two_sinks_is_two_dead_letters(dead_letters: DeadLetters) -> None:
    payload = event_bytes()
    park(dead_letters, payload, sink="journeys")
    park(dead_letters, payload, sink="decision")
    assert dead_letters.list("acme", DeadLetterFilter(), 10).total_size == 2


def test_list_filters_by_sink_state_time_name_code_and_reason(
    dead_letters: DeadLetters, clock: Clock
) -> None:
    a, b, c = (event_bytes(name=n) for n in ("Signed Up", "Order Completed", "Order Completed"))
    park(dead_letters, a, sink="journeys", code="INVALID_ARGUMENT", reason="R1")
    middle = clock.advance(10)
    park(dead_letters, b, sink="decision", code="FAILED_PRECONDITION", reason="R2")
    clock.advance(10)
    park(dead_letters, c, sink="journeys", code="INVALID_ARGUMENT", reason="R2")
    dead_letters.replay(
        "acme", ids=[dead_letters.list("acme", DeadLetterFilter(sink="decision"), 1).dead_letters[0].id]
    )
    ids = [_event_id(p) for p in (a, b, c)]
    assert _all(dead_letters) == [ids[2], ids[1], ids[0]]  # newest parked first
    assert _all(dead_letters, sink="journeys") == [ids[2], ids[0]]
    assert _all(dead_letters, state=DeadLetterState.REPLAYED) == [ids[1]]
    assert _all(dead_letters, state=DeadLetterState.PENDING) == [ids[2], ids[0]]
    assert _all(dead_letters, start=middle) == [ids[2], ids[1]]  # start inclusive
    assert _all(dead_letters, end=middle) == [ids[0]]  # end exclusive
    assert _all(dead_letters, event_name="Order Completed") == [ids[2], ids[1]]
    assert _all(dead_letters, error_code="INVALID_ARGUMENT") == [ids[2], ids[0]]
    assert _all(dead_letters, error_reason="R2", sink="journeys") == [ids[2]]
    assert dead_letters.list("acme", DeadLetterFilter(error_reason="R2"), 1).total_size == 2


def test_list_pages_through_every_dead_letter_once(dead_letters: DeadLetters, clock: Clock) -> None:
    payloads = [event_bytes() for _ in range(7)]
    for i, payload in enumerate(payloads):
        if i % 3 == 0:
            clock.advance(1)  # ties on dead_letter_time too: the id breaks them
        park(dead_letters, payload)
    seen: list[str] = []
    token = ""
    sizes = []
    while True:
        page = dead_letters.list("acme", DeadLetterFilter(), 3, token)
        assert page.total_size == 7
        seen += [record.event_id for record in page.dead_letters]
        sizes.append(len(page.dead_letters))
        token = page.next_page_token
        if not token:
            break
    assert sizes == [3, 3, 1]
    assert sorted(seen) == sorted(_event_id(p) for p in payloads)
    assert seen == _all(dead_letters)


@pytest.mark.parametrize("token", ["garbage!", "eyJ4IjoxfQ==", "W10="])
def test_list_rejects_a_page_token_it_did_not_issue(dead_letters: DeadLetters, token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        dead_letters.list("acme", DeadLetterFilter(), 10, token)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in caught.value.violations] == ["page_token"]


def test_list_rejects_a_page_token_of_another_filter(dead_letters: DeadLetters) -> None:
    for _ in range(3):
        park(dead_letters, event_bytes())
    token = dead_letters.list("acme", DeadLetterFilter(), 1).next_page_token
    with pytest.raises(InvalidArgument) as caught:
        dead_letters.list("acme", DeadLetterFilter(sink="journeys"), 1, token)
    assert caught.value.violations[0].reason == "FILTER_CHANGED"


def test_replay_requeues_to_the_sink_then_marks_replayed(
    dead_letters: DeadLetters, requeued: Requeued, clock: Clock
) -> None:
    a, b, c = event_bytes(), event_bytes(), event_bytes()
    for payload, sink in ((c, "journeys"), (b, "decision"), (a, "journeys")):
        park(dead_letters, payload, sink=sink)
        clock.advance(1)
    by_event = {r.event_id: r for r in dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters}
    when = clock.advance(30)
    count = dead_letters.replay("acme", ids=[by_event[_event_id(p)].id for p in (a, b, c)])
    assert count == 3
    # Per sink, oldest parked first.
    assert sorted(requeued.calls) == sorted([("journeys", "acme", [c, a]), ("decision", "acme", [b])])
    for record in dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters:
        assert (record.state, record.replay_count, record.replay_time) == (DeadLetterState.REPLAYED, 1, when)


def test_replay_appends_a_spool_record_for_that_sink_only(
    database: Database, clock: Clock, spool: Spool
) -> None:
    requeue = spool_requeue(spool)
    store = DeadLetters(database, requeue, clock=clock)
    store.migrate()
    payload = event_bytes()
    park(store, payload, sink="journeys")
    [record] = store.list("acme", DeadLetterFilter(), 10).dead_letters
    start = spool.position("journeys")
    assert store.replay("acme", ids=[record.id]) == 1
    [(_, batch)] = spool.read("journeys", start, 1 << 20)
    assert batch is not None
    assert (batch.tenant, list(batch.events), batch.sink_mask) == ("acme", [payload], SINK_BITS["journeys"])
    assert not batch.for_sink(SINK_BITS["decision"])


def test_replay_of_an_unknown_name_replays_nothing(dead_letters: DeadLetters, requeued: Requeued) -> None:
    park(dead_letters, event_bytes())
    [record] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    with pytest.raises(NotFound) as caught:
        dead_letters.replay("acme", ids=[record.id, "doesnotexist"])
    assert caught.value.reason == "DEAD_LETTER_NOT_FOUND"
    assert "deadLetters/doesnotexist" in caught.value.message
    assert requeued.calls == []
    assert dead_letters.get("acme", record.id).state is DeadLetterState.PENDING


def test_replay_validate_only_counts_and_changes_nothing(
    dead_letters: DeadLetters, requeued: Requeued
) -> None:
    park(dead_letters, event_bytes(), sink="journeys")
    park(dead_letters, event_bytes(), sink="decision")
    [record] = dead_letters.list("acme", DeadLetterFilter(sink="decision"), 10).dead_letters
    assert dead_letters.replay("acme", dead_letter_filter=DeadLetterFilter(), validate_only=True) == 2
    assert dead_letters.replay("acme", ids=[record.id], validate_only=True) == 1
    assert requeued.calls == []
    assert _all(dead_letters, state=DeadLetterState.REPLAYED) == []


def test_replay_by_filter_replays_only_what_matches(dead_letters: DeadLetters, requeued: Requeued) -> None:
    keep, replay = event_bytes(), event_bytes()
    park(dead_letters, keep, reason="OTHER")
    park(dead_letters, replay, reason="PERSON_ID_CONFLICT")
    count = dead_letters.replay(
        "acme", dead_letter_filter=DeadLetterFilter(error_reason="PERSON_ID_CONFLICT")
    )
    assert count == 1
    assert requeued.calls == [("journeys", "acme", [replay])]
    assert _all(dead_letters, state=DeadLetterState.PENDING) == [_event_id(keep)]


def test_replay_by_filter_goes_past_one_chunk(dead_letters: DeadLetters, requeued: Requeued) -> None:
    for _ in range(1001):
        park(dead_letters, event_bytes())
    assert dead_letters.replay("acme", dead_letter_filter=DeadLetterFilter()) == 1001
    replayed = [payload for _, _, payloads in requeued.calls for payload in payloads]
    assert len(replayed) == len(set(replayed)) == 1001
    assert dead_letters.list("acme", DeadLetterFilter(state=DeadLetterState.PENDING), 1).total_size == 0


def test_replay_that_cannot_requeue_stays_pending(dead_letters: DeadLetters, requeued: Requeued) -> None:
    park(dead_letters, event_bytes())
    [record] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    requeued.fail = OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        dead_letters.replay("acme", ids=[record.id])
    assert dead_letters.get("acme", record.id).state is DeadLetterState.PENDING


@pytest.mark.parametrize(
    ("ids", "has_filter", "reason"),
    [
        (None, False, "NAMES_OR_FILTER"),
        (["x"], True, "NAMES_OR_FILTER"),
        (["x"] * 1001, False, "TOO_MANY_NAMES"),
    ],
)
def test_replay_rejects_a_bad_selection(
    dead_letters: DeadLetters, ids: list[str] | None, has_filter: bool, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        dead_letters.replay("acme", ids=ids, dead_letter_filter=DeadLetterFilter() if has_filter else None)
    assert {v.reason for v in caught.value.violations} == {reason}


def test_delete_person_erases_by_identifier_and_person_id(
    dead_letters: DeadLetters, database: Database
) -> None:
    by_email = event_bytes(identifiers=(("email", "Ann@Example.com"),))
    by_person = event_bytes(identifiers=(("anonymous_id", "a-9"),), person_id="p-ann")
    by_user = event_bytes(identifiers=(("user_id", "ann"),))
    other = event_bytes(identifiers=(("user_id", "ANN"), ("email", "bob@example.com")))
    for payload in (by_email, by_person, by_user, other):
        park(dead_letters, payload)
    park(dead_letters, by_email, sink="decision")
    deleted = dead_letters.delete_person("acme", "p-ann", [("email", "ann@example.com"), ("user_id", "ann")])
    assert deleted == 4
    assert _all(dead_letters) == [_event_id(other)]  # user ids are case-sensitive
    assert dead_letters.delete_person("acme", "p-ann", [("email", "ann@example.com")]) == 0  # idempotent
    with database.transaction() as tx:
        kept = tx.execute("SELECT type, value FROM dead_letter_identifiers ORDER BY type")
    assert kept == [("email", "bob@example.com"), ("user_id", "ANN")]


def test_delete_person_needs_a_person(dead_letters: DeadLetters) -> None:
    with pytest.raises(InvalidArgument) as caught:
        dead_letters.delete_person("acme", "", [])
    assert {v.field for v in caught.value.violations} == {"person_id", "identifiers"}


def test_tenants_never_see_or_change_each_others_dead_letters(
    dead_letters: DeadLetters, requeued: Requeued
) -> None:
    payload = event_bytes(identifiers=(("email", "a@x.io"),), person_id="p-1")
    park(dead_letters, payload, tenant="acme")
    [record] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    assert dead_letters.list("globex", DeadLetterFilter(), 10).total_size == 0
    with pytest.raises(NotFound):
        dead_letters.get("globex", record.id)
    with pytest.raises(NotFound):
        dead_letters.replay("globex", ids=[record.id])
    assert dead_letters.replay("globex", dead_letter_filter=DeadLetterFilter()) == 0
    assert dead_letters.delete_person("globex", "p-1", [("email", "a@x.io")]) == 0
    assert requeued.calls == []
    assert dead_letters.get("acme", record.id).state is DeadLetterState.PENDING


def test_purge_expired_deletes_only_what_retention_passed(dead_letters: DeadLetters, clock: Clock) -> None:
    old = event_bytes(identifiers=(("email", "old@x.io"),))
    park(dead_letters, old, tenant="acme")
    park(dead_letters, event_bytes(), tenant="globex")
    clock.advance(timedelta(days=10).total_seconds())
    fresh = event_bytes()
    park(dead_letters, fresh, tenant="acme")
    assert dead_letters.purge_expired(T0 + timedelta(days=14, seconds=1), retention_days=14) == 2
    assert _all(dead_letters) == [_event_id(fresh)]
    assert dead_letters.delete_person("acme", "", [("email", "old@x.io")]) == 0


def test_migrate_twice_keeps_the_data(dead_letters: DeadLetters) -> None:
    park(dead_letters, event_bytes())
    dead_letters.migrate()
    assert dead_letters.list("acme", DeadLetterFilter(), 10).total_size == 1


def test_a_payload_that_does_not_parse_is_still_kept(dead_letters: DeadLetters) -> None:
    garbage = b"\xff\xfe not a protobuf"
    park(dead_letters, garbage)
    park(dead_letters, garbage)
    [record] = dead_letters.list("acme", DeadLetterFilter(), 10).dead_letters
    assert record.payload == garbage
    assert record.event_id.startswith("sha256:")
    assert record.attempt_count == 2


def test_filter_rejects_an_empty_time_range() -> None:
    with pytest.raises(InvalidArgument) as caught:
        DeadLetterFilter(start=T0, end=T0)
    assert caught.value.violations[0].field == "filter.dead_letter_time_range"


def test_a_replay_refused_again_at_once_stays_pending(database: Database, clock: Clock) -> None:
    """The sink refuses the replayed event before replay marks it: the newer PENDING state wins, and the
    replay is counted (a fast sink made the count stay 0 and the end-to-end replay test fail)."""
    payload = event_bytes()

    def requeue_refused_at_once(sink: str, tenant: str, payloads: list[bytes]) -> None:
        clock.advance(1)
        park(store, payloads[0], tenant=tenant, sink=sink, reason="STILL_BAD")

    store = DeadLetters(database, requeue_refused_at_once, clock=clock)
    store.migrate()
    park(store, payload)
    [record] = store.list("acme", DeadLetterFilter(), 10).dead_letters
    assert store.replay("acme", ids=[record.id]) == 1
    again = store.get("acme", record.id)
    assert (again.state, again.error_reason, again.replay_count) == (DeadLetterState.PENDING, "STILL_BAD", 1)
    assert again.replay_time == T0 + timedelta(seconds=1)
    assert again.dead_letter_time == T0 + timedelta(seconds=1)
