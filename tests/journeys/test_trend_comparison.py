"""QueryTrends' compare_to_previous: the previous range's start on the zone's clock (days across a DST
change, whole months), its results and formulas against the plain-Python reference over that range, and the
ranges it refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from tests.journeys.conftest import Journeys, field_violations
from tests.journeys.test_query_trends import EVERY_MATH, START, actual, assert_same, request_of
from tests.journeys.trends_reference import Series, TQuery, reference_trend, to_pb, trend_log
from tests.rpc_errors import violations
from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import journeys_service_pb2 as pb

PARIS = ZoneInfo("Europe/Paris")


def _paris(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=PARIS).astimezone(UTC)


@pytest.mark.parametrize(
    ("q", "previous_start"),
    [
        # 14 local days after Paris' change to summer time (29 March): the 14 local days before, 337 hours.
        (
            TQuery(EVERY_MATH, _paris(2026, 4, 1), _paris(2026, 4, 15), "day", "Europe/Paris"),
            _paris(2026, 3, 18),
        ),
        # A day from 02:30 EDT on 9 March 2026: the day before starts at 02:30 on the 8th, which New York's
        # clocks skip (02:00 EST to 03:00 EDT), so as they jump, not at 03:30 (02:30 read in EST).
        (
            TQuery(
                EVERY_MATH[:4],
                datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
                datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
                "day",
                "America/New_York",
            ),
            datetime(2026, 3, 8, 7, tzinfo=UTC),
        ),
        # Whole months by month: April against March, not against the 30 days before April.
        (
            TQuery(EVERY_MATH[:4], _paris(2026, 4, 1), _paris(2026, 5, 1), "month", "Europe/Paris"),
            _paris(2026, 3, 1),
        ),
        # 24 days from a Wednesday, by week and channel: the 24 days before, from a Sunday.
        (
            TQuery(
                EVERY_MATH[:5],
                START + timedelta(days=23),
                START + timedelta(days=47),
                "week",
                breakdown="channel",
                limit=2,
            ),
            START - timedelta(days=1),
        ),
    ],
)
def test_the_previous_range_is_measured_as_its_own_trend(
    journeys: Journeys, q: TQuery, previous_start: datetime
) -> None:
    log = trend_log(41, START - timedelta(days=20), persons=40)
    journeys.write(*(to_pb(e) for e in log))
    request = request_of(q)
    request.compare_to_previous = True
    request.formulas.add(expression="B / A")
    response: pb.QueryTrendsResponse = journeys.stub.QueryTrends(
        request, metadata=journeys.metadata, timeout=30
    )

    assert to_datetime(response.previous_start_time) == previous_start
    assert_same(actual(response), reference_trend(log, q))  # the range's own results are unchanged
    earlier = replace(q, start=previous_start, end=q.start)
    previous = pb.QueryTrendsResponse(results=response.previous_results)
    assert_same(actual(previous), reference_trend(log, earlier))
    assert any(r.event_count for r in response.previous_results)  # the log has events before the range
    assert all(p.complete for r in response.previous_results for p in r.points)

    # The previous formulas are the same formula over the previous results.
    alone = request_of(earlier)
    alone.formulas.add(expression="B / A")
    expected = journeys.stub.QueryTrends(alone, metadata=journeys.metadata, timeout=30)
    assert_same(
        actual(pb.QueryTrendsResponse(results=response.previous_formula_results)),
        actual(pb.QueryTrendsResponse(results=expected.formula_results)),
    )
    assert [r.label for r in response.previous_formula_results] == ["B / A"] * len(expected.formula_results)
    if q.breakdown == "":
        lengths = {len(r.points) for r in [*response.results, *response.previous_results]}
        assert len(lengths) == 1, lengths  # whole days and whole months: as many periods on both sides


def test_without_compare_there_is_no_previous_range(journeys: Journeys) -> None:
    request = request_of(TQuery((Series(),), START, START + timedelta(days=7), "day"))
    response = journeys.stub.QueryTrends(request, metadata=journeys.metadata, timeout=30)
    assert not response.HasField("previous_start_time")
    assert not response.previous_results


@pytest.mark.parametrize(
    ("start", "end", "period", "reason"),
    [
        (
            datetime(1900, 1, 2, tzinfo=UTC),
            datetime(1900, 3, 1, tzinfo=UTC),
            "week",
            "would start before 1900-01-01",
        ),
        # 400 hours to just after Paris' change to summer time are 401 on its clock: 401 hours before them.
        (
            datetime(2026, 3, 29, 1, tzinfo=UTC) - timedelta(hours=400),
            datetime(2026, 3, 29, 1, tzinfo=UTC),
            "hour",
            "more than 400 periods",
        ),
    ],
)
def test_a_previous_range_out_of_bounds_is_refused(
    journeys: Journeys, start: datetime, end: datetime, period: str, reason: str
) -> None:
    request = request_of(
        TQuery((Series(),), start, end, period, "Europe/Paris" if period == "hour" else "UTC")
    )
    request.compare_to_previous = True
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryTrends(request, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"compare_to_previous"}
    assert reason in violations(caught.value)["compare_to_previous"]
