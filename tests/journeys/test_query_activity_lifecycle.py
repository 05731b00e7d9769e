"""QueryActivityLifecycle over gRPC against the plain-Python reference: each period's persons as new,
returning, resurrecting or dormant, per series, in hours, days, weeks and months of a time zone, with the
first event looked for in all history, a range that cuts its first period, populations, a merge, tenants
apart, and validation; ListActivityLifecyclePersons paging through the persons behind each number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tests.breadth import extra, seeds
from tests.journeys.conftest import Journeys, field_violations, override
from tests.journeys.test_query_trends import END, START, request_of
from tests.journeys.trends_reference import (
    Lifecycle,
    Series,
    TEv,
    TQuery,
    activity_log,
    hour_log,
    reference_lifecycle,
    reference_lifecycle_persons,
    to_pb,
)
from tests.rpc_errors import reason, violations
from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import trends_pb2

SERIES = (
    Series(),
    Series(("Purchased", "Signed Up")),
    Series(("Purchased",), currency="EUR"),
    Series((), channels=("web", "email")),
)


def lifecycle_request(q: TQuery) -> pb.QueryActivityLifecycleRequest:
    """The lifecycle request of `q`: its fields are the trend request's, number for number (no breakdown)."""
    trend = request_of(q)
    request = pb.QueryActivityLifecycleRequest(
        series=trend.series, period=trend.period, time_zone=trend.time_zone
    )
    request.time_range.CopyFrom(trend.time_range)
    if trend.HasField("population"):
        request.population.CopyFrom(trend.population)
    return request


def ask(journeys: Journeys, q: TQuery) -> pb.QueryActivityLifecycleResponse:
    response: pb.QueryActivityLifecycleResponse = journeys.stub.QueryActivityLifecycle(
        lifecycle_request(q), metadata=journeys.metadata, timeout=30
    )
    return response


def counted(response: pb.QueryActivityLifecycleResponse) -> dict[int, list[Lifecycle]]:
    return {
        r.series_index: [
            (p.new_persons, p.returning_persons, p.resurrecting_persons, p.dormant_persons) for p in r.points
        ]
        for r in response.results
    }


@pytest.mark.parametrize("seed", seeds(61, 62))
def test_query_activity_lifecycle_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = activity_log(seed, START, END)
    journeys.write(*(to_pb(e) for e in log))
    for q in (
        TQuery(SERIES, START, END, "week", "Europe/Paris"),
        TQuery(SERIES, START + timedelta(hours=5), END, "day", "America/New_York"),  # cuts its first day
        TQuery(SERIES, START - timedelta(days=20), END + timedelta(days=30), "month", "Asia/Tokyo"),
        TQuery(SERIES, START, END, "week", population_plan="pro"),
    ):
        response = ask(journeys, q)
        wanted = reference_lifecycle(log, q)
        assert counted(response) == wanted, q
        assert to_datetime(response.end_time) == q.end
        assert [r.label for r in response.results] == ["all events", "Purchased", "Purchased", "all events"]
        # Every status occurs (in the fixed seeds' logs): the data tells them apart.
        for status in range(4):
            assert extra(seed) or any(point[status] for counts in wanted.values() for point in counts)


def test_query_activity_lifecycle_adds_up_to_the_trends_active_persons(journeys: Journeys) -> None:
    log = activity_log(65, START, END)
    journeys.write(*(to_pb(e) for e in log))
    # A range that cuts its first week: both count that week's part in the range only.
    q = TQuery(SERIES, START + timedelta(days=2), END, "week", "Europe/Paris")
    trend = request_of(q)
    for series in trend.series:
        series.math = trends_pb2.TREND_MATH_UNIQUE_PERSONS
    persons = journeys.stub.QueryTrends(trend, metadata=journeys.metadata, timeout=30)
    response = ask(journeys, q)
    for measured, sorted_ in zip(persons.results, response.results, strict=True):
        assert [(p.period_start, p.complete) for p in sorted_.points] == [
            (p.period_start, p.complete) for p in measured.points
        ]
        active = [p.new_persons + p.returning_persons + p.resurrecting_persons for p in sorted_.points]
        assert active == [int(p.value) for p in measured.points]
        assert sum(active) > 0


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Asia/Kolkata", START),
        # The clocks move by half an hour on 4 October.
        ("Australia/Lord_Howe", datetime(2026, 10, 2, tzinfo=UTC)),
    ],
)
def test_query_activity_lifecycle_counts_hours_of_the_local_clock(
    journeys: Journeys, zone: str, day: datetime
) -> None:
    start = day + timedelta(minutes=20)
    log = hour_log(63, start)
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery(SERIES[:2], start + timedelta(hours=6), start + timedelta(hours=72), "hour", zone)
    wanted = reference_lifecycle(log, q)
    assert counted(ask(journeys, q)) == wanted
    assert sum(point[1] for point in wanted[0]) > 0  # returning persons
    assert sum(point[2] for point in wanted[0]) > 0  # resurrecting persons


def test_query_activity_lifecycle_finds_the_first_event_years_back_and_follows_a_merge(
    journeys: Journeys,
) -> None:
    week = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday
    log = [
        TEv(
            "lc-old",
            week - timedelta(days=900),
            "00000000-0000-0000-0000-0000000000c1",
            "track",
            "Ping",
            "web",
        ),
        TEv(
            "lc-old", week + timedelta(days=1), "00000000-0000-0000-0000-0000000000c2", "track", "Ping", "web"
        ),
        TEv(
            "lc-new", week + timedelta(days=2), "00000000-0000-0000-0000-0000000000c3", "track", "Ping", "app"
        ),
        TEv(
            "lc-new", week + timedelta(days=8), "00000000-0000-0000-0000-0000000000c4", "track", "Ping", "app"
        ),
    ]
    log = [
        e if e.channel != "app" else TEv(e.person, e.at, e.event_id, e.type, e.name, "mobile_app")
        for e in log
    ]
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery((Series(("Ping",)),), week, week + timedelta(days=21), "week")
    # lc-old resurrects in the first week (its first Ping 900 days before), lc-new is new there, returns in
    # the second week, and both are dormant in the weeks after their last.
    assert counted(ask(journeys, q)) == {0: [(1, 0, 1, 0), (0, 1, 0, 1), (0, 0, 0, 1)]}
    journeys.apply(override("lc-new", "lc-old", 1))
    assert counted(ask(journeys, q)) == {0: [(0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1)]}


def test_query_activity_lifecycle_keeps_tenants_apart(journeys: Journeys) -> None:
    log = activity_log(64, START, END, persons=8)
    journeys.write(*(to_pb(e) for e in log))
    other = journeys.for_tenant(f"{journeys.tenant}-lifecycle-other")
    q = TQuery(SERIES[:1], START, END, "week")
    response = other.stub.QueryActivityLifecycle(lifecycle_request(q), metadata=other.metadata, timeout=30)
    assert counted(response) == {0: [(0, 0, 0, 0)] * len(response.results[0].points)}
    assert any(any(point) for point in reference_lifecycle(log, q)[0])


def test_query_activity_lifecycle_refuses_measures_and_what_trends_refuse(journeys: Journeys) -> None:
    request = lifecycle_request(TQuery(SERIES[:1], START, END, "week"))
    request.series.add(math=trends_pb2.TREND_MATH_SUM)  # a sum without a property: only the math is wrong
    request.series.add(math=trends_pb2.TREND_MATH_WEEKLY_ACTIVE_PERSONS)
    request.series.add(property="revenue")
    request.time_zone = "Mars/Olympus_Mons"
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryActivityLifecycle(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "series[1].math",
        "series[2].math",
        "series[3].property",
        "time_zone",
    }
    assert violations(caught.value)["series[1].math"].startswith("the activity lifecycle counts")
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryActivityLifecycle(
            pb.QueryActivityLifecycleRequest(), metadata=journeys.metadata, timeout=10
        )
    assert set(field_violations(caught.value)) == {"series", "time_range.start"}


def list_persons(
    journeys: Journeys, request: pb.ListActivityLifecyclePersonsRequest
) -> tuple[list[str], int]:
    """Every person id of the listing, page after page, and how many pages it took."""
    found: list[str] = []
    pages = 0
    while True:
        page = journeys.stub.ListActivityLifecyclePersons(request, metadata=journeys.metadata, timeout=30)
        found.extend(page.person_ids)
        pages += 1
        if not page.next_page_token:
            return found, pages
        request.page_token = page.next_page_token


_STATUSES = (
    trends_pb2.ACTIVITY_STATUS_NEW,
    trends_pb2.ACTIVITY_STATUS_RETURNING,
    trends_pb2.ACTIVITY_STATUS_RESURRECTING,
    trends_pb2.ACTIVITY_STATUS_DORMANT,
)


def test_list_activity_lifecycle_persons_pages_through_each_number(journeys: Journeys) -> None:
    log = activity_log(66, START, END, persons=60)
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery(SERIES[:2], START, END, "week", "Europe/Paris", population_plan="pro")
    wanted = reference_lifecycle_persons(log, q)
    points = ask(journeys, q).results[0].points
    listed = 0
    for series_index in range(2):
        for n, point in enumerate(points):
            for k, status in enumerate(_STATUSES):
                request = pb.ListActivityLifecyclePersonsRequest(
                    lifecycle=lifecycle_request(q),
                    series_index=series_index,
                    period_start=point.period_start,
                    status=status,
                    page_size=2,
                )
                found, pages = list_persons(journeys, request)
                assert found == sorted(wanted[series_index][n][k]), (series_index, n, status)
                assert pages == max(1, -(-len(found) // 2))
                listed += len(found)
    assert listed > 20


def test_list_activity_lifecycle_persons_refuses_what_names_no_number(journeys: Journeys) -> None:
    q = TQuery(SERIES[:1], START, END, "week")
    request = pb.ListActivityLifecyclePersonsRequest(
        lifecycle=lifecycle_request(q), series_index=1, page_size=-1
    )
    request.period_start.FromDatetime(START + timedelta(days=1))  # a Tuesday: no week starts there
    request.lifecycle.time_zone = "Mars/Olympus_Mons"
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListActivityLifecyclePersons(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "lifecycle.time_zone",
        "series_index",
        "status",
        "page_size",
    }
    request.lifecycle.time_zone = "UTC"
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListActivityLifecyclePersons(request, metadata=journeys.metadata, timeout=10)
    assert set(field_violations(caught.value)) == {"series_index", "period_start", "status", "page_size"}
    # A token of one listing does not page another.
    log = activity_log(67, START, END, persons=30)
    journeys.write(*(to_pb(e) for e in log))
    point = ask(journeys, q).results[0].points[3]
    request = pb.ListActivityLifecyclePersonsRequest(
        lifecycle=lifecycle_request(q),
        period_start=point.period_start,
        status=trends_pb2.ACTIVITY_STATUS_RETURNING,
        page_size=1,
    )
    page = journeys.stub.ListActivityLifecyclePersons(request, metadata=journeys.metadata, timeout=10)
    assert page.next_page_token
    request.status, request.page_token = trends_pb2.ACTIVITY_STATUS_DORMANT, page.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.ListActivityLifecyclePersons(request, metadata=journeys.metadata, timeout=10)
    assert reason(caught.value) == "INVALID_PAGE_TOKEN"
