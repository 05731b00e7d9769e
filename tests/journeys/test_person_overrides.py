"""ApplyPersonOverrides and timelines read through the overrides, over the real journeys server on chDB."""

from __future__ import annotations

import grpc
import pytest

from tests.journeys.conftest import (
    Journeys,
    field_violations,
    ids,
    new_person,
    override,
    stored_event,
)
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


def test_apply_person_overrides_merge_moves_the_source_persons_events(journeys: Journeys) -> None:
    source, target = new_person(), new_person()
    own = journeys.write(stored_event(target, ("user_id", "t"), minute=1))
    merged = journeys.write(
        stored_event(source, ("anonymous_id", "a"), minute=0),
        stored_event(source, ("user_id", "s"), minute=2),
    )
    assert ids(journeys.timeline(target)) == ids(own)

    response = journeys.apply(override(source, target, 1))

    assert (response.applied_count, response.max_version) == (1, 1)
    timeline = journeys.timeline(target)
    assert ids(timeline) == [merged[0].event_id, own[0].event_id, merged[1].event_id]
    assert {e.person_id for e in timeline} == {target}  # reported as the current person
    assert journeys.timeline(source) == []
    # Asked by one of its identifiers, the timeline is the whole timeline of the person holding it now,
    # events without that identifier included (the contract's GetTimelineRequest.identifier).
    by_identifier = journeys.timeline(identifier=("anonymous_id", "a"))
    assert [(e.event_id, e.person_id) for e in by_identifier] == [(e.event_id, target) for e in timeline]


def test_apply_person_overrides_unmerge_moves_only_events_with_the_identifier(journeys: Journeys) -> None:
    person, absorbed, split_off = new_person(), new_person(), new_person()
    kept = journeys.write(stored_event(person, ("user_id", "u"), minute=0))
    absorbed_kept = journeys.write(stored_event(absorbed, ("user_id", "old"), minute=1))
    moved_own = journeys.write(stored_event(person, ("user_id", "u"), ("email", "x@y.z"), minute=2))
    moved_absorbed = journeys.write(stored_event(absorbed, ("email", "x@y.z"), minute=3))
    journeys.apply(override(absorbed, person, 1))

    # The identifier is unmerged: its events leave the person, whether stored with it or with the person it
    # absorbed (the identifier-scoped override wins over the person-wide one).
    response = journeys.apply(
        override(person, split_off, 2, ("email", "x@y.z")),
        override(absorbed, split_off, 3, ("email", "x@y.z")),
    )

    assert (response.applied_count, response.max_version) == (2, 3)
    assert ids(journeys.timeline(person)) == ids(kept) + ids(absorbed_kept)
    split = journeys.timeline(split_off)
    assert ids(split) == ids(moved_own) + ids(moved_absorbed)
    assert {e.person_id for e in split} == {split_off}


def test_apply_person_overrides_split_after_merge_returns_events_to_their_person(journeys: Journeys) -> None:
    source, target = new_person(), new_person()
    events = journeys.write(stored_event(source, ("user_id", "s"), minute=0))
    journeys.apply(override(source, target, 1))
    assert ids(journeys.timeline(target)) == ids(events)

    response = journeys.apply(override(source, source, 2))  # the merge is undone: the override cancels

    assert (response.applied_count, response.max_version) == (1, 2)
    assert journeys.timeline(target) == []
    back = journeys.timeline(source)
    assert [(e.event_id, e.person_id) for e in back] == [(events[0].event_id, source)]


def test_apply_person_overrides_cancelled_unmerge_falls_back_to_the_merge(journeys: Journeys) -> None:
    merged, person, split_off = new_person(), new_person(), new_person()
    events = journeys.write(stored_event(merged, ("email", "x@y.z")))
    journeys.apply(override(merged, person, 1), override(merged, split_off, 2, ("email", "x@y.z")))
    assert ids(journeys.timeline(split_off)) == ids(events)

    journeys.apply(override(merged, merged, 3, ("email", "x@y.z")))  # the unmerge is undone

    assert journeys.timeline(split_off) == []
    assert ids(journeys.timeline(person)) == ids(events)


def test_apply_person_overrides_ignores_an_older_version_after_a_newer(journeys: Journeys) -> None:
    source, newer_target, older_target = new_person(), new_person(), new_person()
    events = journeys.write(stored_event(source, ("user_id", "s")))
    assert journeys.apply(override(source, newer_target, 5)).applied_count == 1

    late = journeys.apply(override(source, older_target, 4))
    again = journeys.apply(override(source, newer_target, 5))

    assert (late.applied_count, late.max_version) == (0, 5)
    assert (again.applied_count, again.max_version) == (0, 5)
    assert ids(journeys.timeline(newer_target)) == ids(events)
    assert journeys.timeline(older_target) == []


def test_apply_person_overrides_within_one_call_the_highest_version_wins(journeys: Journeys) -> None:
    source, first, second = new_person(), new_person(), new_person()
    events = journeys.write(stored_event(source, ("user_id", "s")))

    response = journeys.apply(override(source, second, 8), override(source, first, 7))

    assert (response.applied_count, response.max_version) == (1, 8)
    assert ids(journeys.timeline(second)) == ids(events)
    assert journeys.timeline(first) == []


def test_get_timeline_pages_exactly_through_mapped_events(journeys: Journeys) -> None:
    person, merged, split_off = new_person(), new_person(), new_person()
    own = journeys.write(*(stored_event(person, ("user_id", "p"), minute=2 * i) for i in range(4)))
    theirs = journeys.write(*(stored_event(merged, ("user_id", "m"), minute=2 * i + 1) for i in range(4)))
    away = journeys.write(*(stored_event(person, ("email", "e@x.y"), minute=i) for i in range(3)))
    journeys.apply(override(merged, person, 1), override(person, split_off, 2, ("email", "e@x.y")))

    paged = journeys.timeline(person, page_size=3)

    assert ids(paged) == ids(sorted(own + theirs, key=lambda e: e.timestamp.ToDatetime()))
    assert ids(journeys.timeline(split_off, page_size=2)) == ids(away)


def test_apply_person_overrides_rejects_invalid_overrides_and_records_none(journeys: Journeys) -> None:
    source, target = new_person(), new_person()
    events = journeys.write(stored_event(source, ("user_id", "s")))
    invalid = [
        override("", target, 1),
        override(source, "", 1),
        override(source, target, 0),
        override(source, target, 1, ("email", "")),
        person_override_pb2.PersonOverride(person_id=source, override_person_id=target, version=-3),
    ]

    with pytest.raises(grpc.RpcError) as raised:
        journeys.apply(*invalid, override(source, target, 2))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {
        "person_overrides[0].person_id": "REQUIRED",
        "person_overrides[1].override_person_id": "REQUIRED",
        "person_overrides[2].version": "OUT_OF_RANGE",
        "person_overrides[3].identifier.value": "REQUIRED",
        "person_overrides[4].version": "OUT_OF_RANGE",
    }
    assert journeys.timeline(target) == []  # the valid override of the batch was not recorded either
    assert ids(journeys.timeline(source)) == ids(events)


def test_apply_person_overrides_names_a_create_time_outside_timestamps_range(journeys: Journeys) -> None:
    """Was INTERNAL: the docstring's INVALID_ARGUMENT naming each field, and nothing recorded."""
    source, target = new_person(), new_person()
    events = journeys.write(stored_event(source, ("user_id", "s")))
    late, bad_nanos = override(source, target, 1), override(source, target, 2)
    late.create_time.seconds = MAX_TIMESTAMP_SECONDS + 1
    bad_nanos.create_time.nanos = 1_000_000_000
    with pytest.raises(grpc.RpcError) as raised:
        journeys.apply(late, bad_nanos, override(source, target, 3))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {
        "person_overrides[0].create_time": "OUT_OF_RANGE",
        "person_overrides[1].create_time.nanos": "OUT_OF_RANGE",
    }
    assert ids(journeys.timeline(source)) == ids(events)


def test_apply_person_overrides_rejects_more_than_ten_thousand(journeys: Journeys) -> None:
    too_many = [override(new_person(), new_person(), 1)] * 10_001
    with pytest.raises(grpc.RpcError) as raised:
        journeys.apply(*too_many)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"person_overrides": "TOO_MANY"}


def test_apply_person_overrides_never_apply_to_another_tenant(journeys: Journeys) -> None:
    other = journeys.for_tenant(journeys.tenant + "-other")
    source, target = new_person(), new_person()
    mine = journeys.write(stored_event(source, ("user_id", "s")))
    theirs = other.write(stored_event(source, ("user_id", "s")))

    assert journeys.apply(override(source, target, 3)).max_version == 3

    assert ids(journeys.timeline(target)) == ids(mine)
    assert other.timeline(target) == []
    assert ids(other.timeline(source)) == ids(theirs)
    assert other.apply().max_version == 0


def test_get_timeline_names_whose_timeline_it_is(journeys: Journeys) -> None:
    source, target = new_person(), new_person()
    journeys.write(stored_event(source, ("email", "holder@example.com"), minute=0))
    journeys.apply(override(source, target, 1))

    def person_of(request: pb.GetTimelineRequest) -> str:
        response: pb.GetTimelineResponse = journeys.stub.GetTimeline(
            request, metadata=journeys.metadata, timeout=10
        )
        return response.person_id

    by_identifier = pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="email", value="holder@example.com")
    )
    assert person_of(by_identifier) == target  # the current person of the latest event carrying it
    assert person_of(pb.GetTimelineRequest(person_id=source)) == source  # as asked, even with no events left
    unknown = pb.GetTimelineRequest(identifier=event_pb2.Identifier(type="email", value="nobody@example.com"))
    assert person_of(unknown) == ""


def test_scoped_overrides_of_one_version_pick_the_same_person_in_timelines_and_analytics(
    journeys: Journeys,
) -> None:
    """Two identifier-scoped overrides of one stored person at the same version (a split in one step), and an
    event carrying both identifiers: the lower (identifier type, value) wins (OverrideMapping.rules), in the
    timeline and in every analytics read (store/relation.py), so the event belongs to one person everywhere.
    Several events, alternating which identifier sorts first, so no arrival order passes by chance."""
    expected: dict[str, str] = {}  # event id -> the person it reads as
    targets: list[str] = []
    for i in range(8):
        stored, first, second = new_person(), new_person(), new_person()
        lower, upper = ("email", f"e{i}@x.z"), ("user_id", f"u{i}")
        a, b = (lower, upper) if i % 2 else (upper, lower)  # applied in either order
        (event,) = journeys.write(stored_event(stored, a, b, minute=i))
        journeys.apply(override(stored, first, 10 + i, a), override(stored, second, 10 + i, b))
        expected[event.event_id] = first if a == lower else second
        targets += [first, second]

    timeline = {e.event_id: person for person in targets for e in journeys.timeline(person)}
    assert timeline == expected

    # The persons entering a funnel whose first step is that event (a funnel takes two steps at least).
    steps = [analytics_pb2.EventMatcher(event_name=name) for name in ("Product Viewed", "Never Sent")]
    funnel = pb.QueryFunnelRequest(steps=[funnel_pb2.FunnelStep(event=m) for m in steps])
    request = pb.ListFunnelPersonsRequest(funnel=funnel, step_index=0, page_size=100)
    response = journeys.stub.ListFunnelPersons(request, metadata=journeys.metadata, timeout=60)
    assert sorted(response.person_ids) == sorted(expected.values())
