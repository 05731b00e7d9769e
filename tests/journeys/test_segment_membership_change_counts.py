"""CountSegmentMembershipChanges over the real journeys server: a segment's entries and exits per day, week
or month equal its change feed (ListSegmentMembershipChanges) counted by hand in the same calendar, every
period of the range listed, zeros included; bad requests name their field."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from tests.journeys.conftest import Journeys, field_violations, new_person
from tests.journeys.segments_support import count, delete_all_segments, event, members_fresh_after, wait_ready
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import retention_pb2, segment_pb2

ENTERED = segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_ENTERED
EXITED = segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_EXITED
DAY = retention_pb2.RETENTION_PERIOD_DAY
WEEK = retention_pb2.RETENTION_PERIOD_WEEK


@pytest.fixture(autouse=True)
def _segments_deleted_afterwards(journeys: Journeys) -> Iterator[None]:
    yield
    delete_all_segments(journeys)


def count_changes(
    journeys: Journeys, segment: str, start: datetime, end: datetime, period: int = DAY, zone: str = ""
) -> pb.CountSegmentMembershipChangesResponse:
    request = pb.CountSegmentMembershipChangesRequest(
        segment=segment,
        time_range=event_pb2.TimeRange(start=to_timestamp(start), end=to_timestamp(end)),
        period=period,  # type: ignore[arg-type]
        time_zone=zone,
    )
    response: pb.CountSegmentMembershipChangesResponse = journeys.stub.CountSegmentMembershipChanges(
        request, metadata=journeys.metadata, timeout=10
    )
    return response


def local_period(at: datetime, zone: ZoneInfo, period: int) -> date:
    """The local date the period holding `at` begins on (days, or weeks from Monday)."""
    local = at.astimezone(zone).date()
    return local - timedelta(days=local.weekday()) if period == WEEK else local


def expected(
    changes: list[segment_pb2.SegmentMembershipChange], zone: ZoneInfo, period: int
) -> Counter[tuple[date, int]]:
    return Counter((local_period(to_datetime(c.change_time), zone, period), c.change_type) for c in changes)


def counted(response: pb.CountSegmentMembershipChangesResponse, zone: ZoneInfo) -> Counter[tuple[date, int]]:
    found: Counter[tuple[date, int]] = Counter()
    for c in response.counts:
        local = to_datetime(c.period_start).astimezone(zone).date()
        found[(local, ENTERED)] += c.entered_count
        found[(local, EXITED)] += c.exited_count
    return +found  # zeros dropped, as in the feed's tally


def test_counts_per_period_equal_the_change_feed(journeys: Journeys) -> None:
    window = timedelta(seconds=2)
    name = journeys.create_segment(count("Pinged", window=window), "recently-pinged").name
    wait_ready(journeys, name)
    people = [new_person() for _ in range(3)]
    journeys.write(*(event(p, "Pinged") for p in people))
    pinged = datetime.now(UTC)
    members, _ = members_fresh_after(journeys, name, pinged)
    assert sorted(members) == sorted(people)
    lapsed, _ = members_fresh_after(journeys, name, pinged + window + timedelta(seconds=0.5), windows=True)
    assert lapsed == []
    changes, _ = journeys.segment_changes(segment=name)
    start, end = pinged - timedelta(days=2), pinged + timedelta(days=1)

    for zone_name, period in (("", DAY), ("Pacific/Kiritimati", DAY), ("America/Los_Angeles", WEEK)):
        zone = ZoneInfo(zone_name or "UTC")
        response = count_changes(journeys, name, start, end, period, zone_name)

        assert counted(response, zone) == expected(changes, zone, period)
        assert sum(c.entered_count for c in response.counts) == 3
        assert sum(c.exited_count for c in response.counts) == 3
        starts = [to_datetime(c.period_start) for c in response.counts]
        assert starts == sorted(starts)
        assert starts[0] <= start < (starts[1] if len(starts) > 1 else end)
        assert all(s.astimezone(zone).time() == datetime.min.time() for s in starts)
        assert response.HasField("data_as_of")
    days = count_changes(journeys, name, start, end)
    assert len(days.counts) in {3, 4}  # the days overlapping [start, end): 4 unless start is a midnight
    assert any(c.entered_count == c.exited_count == 0 for c in days.counts)  # quiet days are listed
    before = count_changes(journeys, name, start, pinged - timedelta(hours=1))
    assert all(c.entered_count == c.exited_count == 0 for c in before.counts)


def test_bad_requests_name_their_field(journeys: Journeys) -> None:
    name = journeys.create_segment(count("Pinged"), "pinged").name
    now = datetime.now(UTC)

    def refused(request: pb.CountSegmentMembershipChangesRequest) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            journeys.stub.CountSegmentMembershipChanges(request, metadata=journeys.metadata, timeout=10)
        return caught.value

    def span(start: datetime, end: datetime) -> event_pb2.TimeRange:
        return event_pb2.TimeRange(start=to_timestamp(start), end=to_timestamp(end))

    missing = refused(pb.CountSegmentMembershipChangesRequest(segment="segments/absent"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    for request, field in (
        (pb.CountSegmentMembershipChangesRequest(segment="absent"), "segment"),
        (pb.CountSegmentMembershipChangesRequest(segment=name, time_range=span(now, now)), "time_range"),
        (pb.CountSegmentMembershipChangesRequest(segment=name, time_zone="Mars/Olympus"), "time_zone"),
        (pb.CountSegmentMembershipChangesRequest(segment=name, time_zone="right/UTC"), "time_zone"),
        (
            pb.CountSegmentMembershipChangesRequest(
                segment=name, time_range=span(now - timedelta(days=400), now), period=DAY
            ),
            "time_range",
        ),
        # Were INTERNAL: Python's calendar cannot date a period in year 1 west of UTC, nor after 9999.
        (
            pb.CountSegmentMembershipChangesRequest(
                segment=name,
                time_range=span(datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 20, tzinfo=UTC)),
                time_zone="America/New_York",
            ),
            "time_range",
        ),
        (
            pb.CountSegmentMembershipChangesRequest(
                segment=name,
                time_range=span(datetime(9999, 12, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)),
                time_zone="Asia/Tokyo",
                period=retention_pb2.RETENTION_PERIOD_MONTH,
            ),
            "time_range",
        ),
    ):
        error = refused(request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in field_violations(error), (request, field_violations(error))
    # 400 days are 400 or 401 periods; 399 days always fit.
    fits = pb.CountSegmentMembershipChangesRequest(
        segment=name, time_range=span(now - timedelta(days=399), now), period=DAY
    )
    response = journeys.stub.CountSegmentMembershipChanges(fits, metadata=journeys.metadata, timeout=10)
    assert len(response.counts) in {399, 400}
    # Unset bounds: the feed's 30 days up to now, by week.
    default = journeys.stub.CountSegmentMembershipChanges(
        pb.CountSegmentMembershipChangesRequest(segment=name), metadata=journeys.metadata, timeout=10
    )
    assert 5 <= len(default.counts) <= 6
