"""Memberships kept current as events arrive and as time passes, and ListSegmentMembershipChanges, the feed
of entries and exits: a qualifying event moves a person in within the freshness an answer states, a person
leaves when a window lapses with no event, merges move memberships to the surviving person, deletions and
erasures take members out; the feed is strictly ordered, paged and filtered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tests.journeys.conftest import Journeys, field_violations, new_person, override
from tests.journeys.segments_support import (
    DEADLINE_SECONDS,
    count,
    delete_all_segments,
    event,
    member_of,
    members_fresh_after,
    memberships,
    wait_ready,
)
from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

ENTERED = segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_ENTERED
EXITED = segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_EXITED


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    """The session's evaluator stops evaluating this test's segments once it is over."""
    yield
    delete_all_segments(journeys)


def moves(changes: list[segment_pb2.SegmentMembershipChange]) -> list[tuple[str, str, int]]:
    return [(c.segment, c.person_id, c.change_type) for c in changes]


def test_a_qualifying_event_moves_a_person_in_within_the_stated_freshness(journeys: Journeys) -> None:
    name = journeys.create_segment(count("Upgraded"), "upgraders").name
    wait_ready(journeys, name)
    person = new_person()

    journeys.write(event(person, "Viewed"))
    viewed = datetime.now(UTC)
    before, _ = members_fresh_after(journeys, name, viewed)
    # Delivered late: dated (and received by ingest) an hour ago, so only its arrival can reveal it.
    journeys.write(event(person, "Upgraded", datetime.now(UTC) - timedelta(hours=1)))
    acknowledged = datetime.now(UTC)
    members, response = members_fresh_after(journeys, name, acknowledged)

    assert before == []
    assert members == [person]
    assert response.total_size == 1
    assert response.status.member_count == 1
    assert response.status.state == segment_pb2.SEGMENT_STATE_READY
    answer = memberships(journeys, person)
    assert to_datetime(answer.data_as_of) > acknowledged
    assert [m.segment for m in answer.memberships] == [name]
    assert to_datetime(answer.memberships[0].enter_time) > acknowledged - timedelta(seconds=1)
    changes, page = journeys.segment_changes(segment=name)
    assert moves(changes) == [(name, person, ENTERED)]
    assert to_datetime(page.data_as_of) > acknowledged
    assert page.next_page_token == ""


def test_a_person_leaves_when_a_window_lapses_with_no_event(journeys: Journeys) -> None:
    window = timedelta(seconds=3)
    name = journeys.create_segment(count("Pinged", window=window), "recently-pinged").name
    wait_ready(journeys, name)
    person, other = new_person(), new_person()

    journeys.write(event(person, "Pinged"), event(other, "Pinged", datetime.now(UTC) - timedelta(days=1)))
    pinged = datetime.now(UTC)
    inside, _ = members_fresh_after(journeys, name, pinged)
    lapsed, response = members_fresh_after(
        journeys, name, pinged + window + timedelta(seconds=0.5), windows=True
    )

    assert inside == [person]
    assert lapsed == []
    assert response.status.member_count == 0
    changes, _ = journeys.segment_changes(segment=name)
    assert moves(changes) == [(name, person, ENTERED), (name, person, EXITED)]
    assert to_datetime(changes[1].change_time) >= pinged + window - timedelta(seconds=1)


def test_a_person_enters_when_a_window_lapses_with_no_event(journeys: Journeys) -> None:
    """ "No login in the last 3 seconds" (a count EQUAL 0): time alone moves the person in."""
    window = timedelta(seconds=3)
    quiet = count("Login", 0, window=window, comparison=condition_pb2.COMPARISON_OPERATOR_EQUAL)
    name = journeys.create_segment(quiet, "quiet").name
    wait_ready(journeys, name)
    person = new_person()

    journeys.write(event(person, "Login"))
    logged_in = datetime.now(UTC)
    active, _ = members_fresh_after(journeys, name, logged_in)
    quiet_now, _ = members_fresh_after(
        journeys, name, logged_in + window + timedelta(seconds=0.5), windows=True
    )

    assert (active, quiet_now) == ([], [person])


def test_membership_changes_are_listed_in_order_and_paged(journeys: Journeys) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    a, b, c = "person-a", "person-b", "person-c"
    journeys.write(event(a, "X", past), event(b, "X", past), event(b, "Y", past))
    x = journeys.create_segment(count("X"), "did-x").name
    y = journeys.create_segment(count("Y"), "did-y").name
    wait_ready(journeys, x)
    wait_ready(journeys, y)
    journeys.write(event(c, "Y", past))
    members_fresh_after(journeys, y, datetime.now(UTC))

    everything, last = journeys.segment_changes()
    sequences = [change.sequence for change in everything]
    assert sequences == sorted(set(sequences))
    assert sequences[0] > 0
    assert sorted(moves(everything)) == sorted(
        [(x, a, ENTERED), (x, b, ENTERED), (y, b, ENTERED), (y, c, ENTERED)]
    )
    assert moves(everything)[-1] == (y, c, ENTERED)
    assert last.HasField("data_as_of")
    assert last.next_page_token == ""
    paged, _ = journeys.segment_changes(page_size=1)
    assert [change.sequence for change in paged] == sequences
    after_first, _ = journeys.segment_changes(after=sequences[0])
    assert [change.sequence for change in after_first] == sequences[1:]
    only_y, _ = journeys.segment_changes(segment=y, page_size=1)
    assert moves(only_y) == [m for m in moves(everything) if m[0] == y]

    for request, code, field in (
        (pb.ListSegmentMembershipChangesRequest(segment="segments/absent"), grpc.StatusCode.NOT_FOUND, ""),
        (
            pb.ListSegmentMembershipChangesRequest(after_sequence=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "after_sequence",
        ),
        (
            pb.ListSegmentMembershipChangesRequest(page_token="%%"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            journeys.stub.ListSegmentMembershipChanges(request, metadata=journeys.metadata, timeout=10)
        assert caught.value.code() == code
        assert not field or field in field_violations(caught.value)


def test_a_merge_moves_membership_to_the_surviving_person(journeys: Journeys) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    survivor, merged = new_person(), new_person()
    journeys.write(event(survivor, "Purchased", past), event(merged, "Purchased", past))
    buyers = journeys.create_segment(count("Purchased"), "buyers").name
    repeat = journeys.create_segment(count("Purchased", 2), "repeat-buyers").name
    wait_ready(journeys, buyers)
    wait_ready(journeys, repeat)
    assert sorted(journeys.segment_members(buyers)[0]) == sorted([survivor, merged])
    assert journeys.segment_members(repeat)[0] == []
    head = journeys.segment_changes()[0][-1].sequence

    journeys.apply(override(merged, survivor, version=1))
    applied = datetime.now(UTC)

    assert members_fresh_after(journeys, buyers, applied)[0] == [survivor]
    assert members_fresh_after(journeys, repeat, applied)[0] == [survivor]
    after, _ = journeys.segment_changes(after=head)
    assert sorted(moves(after)) == sorted([(buyers, merged, EXITED), (repeat, survivor, ENTERED)])
    assert list(memberships(journeys, merged).memberships) == []


def test_deleting_a_segment_takes_its_members_out(journeys: Journeys) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    journeys.write(event("p1", "X", past), event("p2", "X", past))
    name = journeys.create_segment(count("X"), "doomed").name
    wait_ready(journeys, name)
    assert sorted(journeys.segment_members(name)[0]) == ["p1", "p2"]

    journeys.stub.DeleteSegment(pb.DeleteSegmentRequest(name=name), metadata=journeys.metadata, timeout=10)

    assert list(memberships(journeys, "p1").memberships) == []  # at once: reads join the live definitions
    with pytest.raises(grpc.RpcError) as caught:
        journeys.segment_members(name)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(changes := journeys.segment_changes()[0]) < 4:
        assert time.monotonic() < deadline, moves(changes)
        time.sleep(0.1)
    assert sorted(moves(changes)[2:]) == [(name, "p1", EXITED), (name, "p2", EXITED)]
    again = journeys.create_segment(count("Y"), "doomed").name  # a new lifetime starts empty
    assert wait_ready(journeys, again).status.member_count == 0


def test_segments_follow_the_segments_they_refer_to(journeys: Journeys) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    journeys.write(event("p1", "X", past), event("p2", "X", past), event("p2", "Y", past))
    x = journeys.create_segment(count("X"), "did-x").name
    condition = condition_pb2.PersonCondition(
        group=condition_pb2.ConditionGroup(conditions=[member_of(x), count("Y")])
    )
    both = journeys.create_segment(condition, "did-x-and-y").name
    wait_ready(journeys, both)
    assert journeys.segment_members(both)[0] == ["p2"]

    journeys.write(event("p3", "X"), event("p3", "Y"))
    written = datetime.now(UTC)

    assert members_fresh_after(journeys, both, written)[0] == ["p2", "p3"]


def test_an_erased_person_leaves_every_segment(journeys: Journeys) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    journeys.write(event("erased", "X", past), event("kept", "X", past))
    name = journeys.create_segment(count("X"), "did-x").name
    wait_ready(journeys, name)

    journeys.delete("erased")
    erased = datetime.now(UTC)

    assert members_fresh_after(journeys, name, erased)[0] == ["kept"]
    assert moves(journeys.segment_changes()[0])[-1] == (name, "erased", EXITED)
