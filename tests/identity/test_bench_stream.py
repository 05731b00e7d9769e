"""The identity bench's stream of visits (bench/identity_stream.py), whose figure issue 7's throughput target
is judged on: its visitors must be people nothing earlier in the run met, its events in time order, and its
count of writing sets what the granularity rule gives."""

from __future__ import annotations

from bench.identity import _workload
from bench.identity_stream import BATCH, WARMUP_SECONDS, Visits, session_stream
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as pb

NOW = 1_800_000_000_000_000


def _inputs(requests: list[bytes]) -> list[pb.IdentityResolutionInput]:
    return [i for r in requests for i in pb.ResolveIdentitiesRequest.FromString(r).inputs]


def _known_people(inputs: list[pb.IdentityResolutionInput]) -> set[int]:
    """The filled profiles the inputs name (their anonymous ids `a<k>`)."""
    return {
        int(identifier.value[1:])
        for i in inputs
        for identifier in i.identifiers
        if identifier.type == "anonymous_id" and identifier.value[1:].isdigit()
    }


def test_the_stream_meets_only_people_last_seen_a_day_before_that_no_earlier_batch_met() -> None:
    profiles = 4_000
    workload = _workload(profiles, requests=10, now=NOW, visits=Visits())
    streamed = _known_people(_inputs(workload.stream.warmup + workload.stream.measured))
    earlier = _known_people(_inputs(workload.single + workload.seen_now + workload.day_later))
    assert streamed, "the stream has known visitors"
    assert all(k % 2 == 1 for k in streamed), "the odd profiles are the ones last seen a day before"
    assert not streamed & earlier


def test_the_stream_is_in_time_order_and_split_at_the_warm_up_window() -> None:
    stream = session_stream(range(1, 40_000, 4), NOW, batches=3, granularity_seconds=60)
    warmup, measured = _inputs(stream.warmup), _inputs(stream.measured)
    times = [i.timestamp.ToMicroseconds() for i in warmup + measured]
    assert times == sorted(times)
    boundary = NOW + WARMUP_SECONDS * 1_000_000
    assert all(t < boundary for t in times[: len(warmup)])
    assert all(t >= boundary for t in times[len(warmup) :])
    assert stream.measured_sets == len(measured) == 3 * BATCH
    assert all(len(pb.ResolveIdentitiesRequest.FromString(r).inputs) <= BATCH for r in stream.measured)


def test_a_later_event_carries_the_user_id_its_session_logged_in_with() -> None:
    stream = session_stream(range(1, 40_000, 4), NOW, batches=3, granularity_seconds=60)
    sessions: dict[str, list[pb.IdentityResolutionInput]] = {}
    for i in _inputs(stream.warmup + stream.measured):
        sessions.setdefault(i.event_id.rsplit("-", 1)[0], []).append(i)
    logins = 0
    for events in sessions.values():
        events.sort(key=lambda i: int(i.event_id.rsplit("-", 1)[1]))
        identified = [n for n, i in enumerate(events) if i.event_type == event_pb2.EVENT_TYPE_IDENTIFY]
        assert len(identified) <= 1
        for n, i in enumerate(events):
            has_user = any(identifier.type == "user_id" for identifier in i.identifiers)
            assert has_user == (bool(identified) and n >= identified[0])
        logins += bool(identified)
    assert 0.05 < logins / len(sessions) < 0.15  # LOGIN_SHARE, 10%


def test_writing_sets_follow_the_granularity_and_the_session_length() -> None:
    people = range(1, 400_000, 4)
    every_event = session_stream(people, NOW, batches=3, granularity_seconds=0)
    assert every_event.measured_writes == every_event.measured_sets
    one_event_sessions = session_stream(
        people, NOW, batches=3, granularity_seconds=3600, visits=Visits(events=1)
    )
    assert one_event_sessions.measured_writes == one_event_sessions.measured_sets
    minute = session_stream(people, NOW, batches=3, granularity_seconds=60)
    hour = session_stream(people, NOW, batches=3, granularity_seconds=3600)
    # An hour's precision: a write for each session's first event (and each login), about one set in 12.
    assert hour.measured_writes < minute.measured_writes < minute.measured_sets
    assert 0.05 < hour.measured_writes / hour.measured_sets < 0.15
