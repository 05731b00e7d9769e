"""QueryStickiness over gRPC against the plain-Python reference: persons by how many periods of the range
they were active in, per series, in hours, days, weeks and months of a time zone, broken down with `other`
merging each person's periods, populations, and validation."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from tests.breadth import seeds
from tests.journeys.conftest import Journeys, field_violations
from tests.journeys.test_query_trends import END, START, request_of
from tests.journeys.trends_reference import (
    Key,
    Series,
    TQuery,
    hour_log,
    reference_stickiness,
    to_pb,
    trend_log,
)
from tests.rpc_errors import violations
from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import trends_pb2

SERIES = (
    Series(),
    Series(("Purchased", "Signed Up")),
    Series(("Purchased",), currency="EUR"),
    Series((), channels=("web", "email")),
)


def stickiness_request(q: TQuery) -> pb.QueryStickinessRequest:
    """The stickiness request of `q`: its fields are the trend request's, number for number."""
    return pb.QueryStickinessRequest.FromString(request_of(q).SerializeToString())


def ask(journeys: Journeys, q: TQuery) -> pb.QueryStickinessResponse:
    response: pb.QueryStickinessResponse = journeys.stub.QueryStickiness(
        stickiness_request(q), metadata=journeys.metadata, timeout=30
    )
    return response


def counted(response: pb.QueryStickinessResponse) -> dict[Key, tuple[int, ...]]:
    found = {}
    for r in response.results:
        value = r.breakdown_value
        found[(r.series_index, value.value, value.other, value.missing)] = tuple(r.persons)
        assert r.total_persons == sum(r.persons)
        assert len(r.persons) == response.period_count
    return found


@pytest.mark.parametrize("seed", seeds(51, 52))
def test_query_stickiness_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = trend_log(seed, START)
    journeys.write(*(to_pb(e) for e in log))
    for q in (
        TQuery(SERIES, START, END, "week", "Europe/Paris"),
        TQuery(SERIES, START + timedelta(hours=5), END, "day", "America/New_York"),
        TQuery(SERIES, START - timedelta(days=20), END + timedelta(days=30), "month", "Asia/Tokyo"),
        TQuery(SERIES, START, END, "week", breakdown="channel", limit=2),
        TQuery(SERIES, START, END, "day", breakdown="properties.source", limit=2),
        TQuery(SERIES, START, END, "week", breakdown="person.plan", population_plan="pro"),
    ):
        response = ask(journeys, q)
        wanted = reference_stickiness(log, q)
        assert counted(response) == wanted, q
        assert to_datetime(response.end_time) == q.end
        assert any(counts[1:] != (0,) * (len(counts) - 1) for counts in wanted.values())  # some came back
        labels = {r.series_index: r.label for r in response.results}
        assert labels.get(0, "all events") == "all events"
        if q.breakdown:
            for index in range(len(SERIES)):
                ranked = [r.breakdown_value.other for r in response.results if r.series_index == index]
                assert ranked == sorted(ranked), q  # `other` last


def test_query_stickiness_counts_hours_of_the_local_clock(journeys: Journeys) -> None:
    start = START + timedelta(minutes=20)
    log = hour_log(53, start)
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery(
        SERIES[:2], start, start + timedelta(hours=72), "hour", "Asia/Kolkata", breakdown="channel", limit=2
    )
    assert counted(ask(journeys, q)) == reference_stickiness(log, q)


def test_query_stickiness_without_events_has_one_empty_result_per_series(journeys: Journeys) -> None:
    q = TQuery(SERIES[:2], END + timedelta(days=400), END + timedelta(days=414), "day")
    response = ask(journeys, q)
    assert response.period_count == 14
    assert [(r.series_index, tuple(r.persons), r.total_persons) for r in response.results] == [
        (0, (0,) * 14, 0),
        (1, (0,) * 14, 0),
    ]


def test_query_stickiness_refuses_measures_and_what_trends_refuse(journeys: Journeys) -> None:
    request = stickiness_request(TQuery(SERIES[:1], START, END, "week"))
    request.series.add(
        math=trends_pb2.TREND_MATH_SUM
    )  # a sum without a property: only the math is wrong here
    request.series.add(math=trends_pb2.TREND_MATH_UNIQUE_PERSONS)
    request.series.add(property="revenue")
    request.time_zone = "Mars/Olympus_Mons"
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryStickiness(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "series[1].math",
        "series[2].math",
        "series[3].property",
        "time_zone",
    }
    assert violations(caught.value)["series[1].math"].startswith("stickiness counts the periods")
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryStickiness(pb.QueryStickinessRequest(), metadata=journeys.metadata, timeout=10)
    assert set(field_violations(caught.value)) == {"series", "time_range.start"}
