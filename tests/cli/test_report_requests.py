"""What `wayline report` asks QueryFunnel for its trend: the shortest periods that keep the line readable, and
no trend where QueryFunnel would refuse one, so that a long or early range still gets its funnel; and what it
asks QueryActivityLifecycle for the buyers: weeks (months where the trends are), nothing where the trends
have no period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import retention_pb2
from wayline_cli.report.requests import (
    ReportQuery,
    buyers_lifecycle_request,
    funnel_request,
    funnel_trend,
    lifecycle_period,
)

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "period"),
    [
        (1, retention_pb2.RETENTION_PERIOD_DAY),
        (31, retention_pb2.RETENTION_PERIOD_DAY),
        (32, retention_pb2.RETENTION_PERIOD_WEEK),
        (731, retention_pb2.RETENTION_PERIOD_WEEK),
        (732, retention_pb2.RETENTION_PERIOD_MONTH),
        (365 * 30, retention_pb2.RETENTION_PERIOD_MONTH),
    ],
)
def test_the_period_follows_the_range(days: int, period: int) -> None:
    query = ReportQuery(START, START + timedelta(days=days))
    trend = funnel_trend(query)
    assert trend is not None
    assert trend.period == period
    assert funnel_request(query, ("A", "B")).trend == trend


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START - timedelta(days=365 * 40), START),  # 480 months: more periods than QueryFunnel takes
        (datetime(1899, 12, 1, tzinfo=UTC), datetime(1900, 2, 1, tzinfo=UTC)),  # before its calendar
        (datetime(2299, 11, 1, tzinfo=UTC), datetime(2299, 12, 31, tzinfo=UTC)),  # after it
    ],
)
def test_no_trend_where_query_funnel_would_refuse_one(start: datetime, end: datetime) -> None:
    query = ReportQuery(start, end)
    assert funnel_trend(query) is None
    assert not funnel_request(query, ("A", "B")).HasField("trend")


def test_a_trend_over_history_before_1970() -> None:
    """Imported history is dated in its own periods (ADR 87): a range across 1970 gets its weekly trend."""
    trend = funnel_trend(ReportQuery(datetime(1969, 12, 1, tzinfo=UTC), datetime(1970, 2, 1, tzinfo=UTC)))
    assert trend is not None
    assert trend.period == retention_pb2.RETENTION_PERIOD_WEEK


@pytest.mark.parametrize(
    ("days", "period"),
    [
        (1, retention_pb2.RETENTION_PERIOD_WEEK),  # the trends' days: a day's buyers are too few
        (31, retention_pb2.RETENTION_PERIOD_WEEK),
        (70, retention_pb2.RETENTION_PERIOD_WEEK),  # the demo's report
        (731, retention_pb2.RETENTION_PERIOD_WEEK),
        (732, retention_pb2.RETENTION_PERIOD_MONTH),  # as the trends
        (365 * 30, retention_pb2.RETENTION_PERIOD_MONTH),
    ],
)
def test_the_buyers_by_week_or_the_trends_months(days: int, period: int) -> None:
    query = ReportQuery(START, START + timedelta(days=days), currency="GBP")
    assert lifecycle_period(query) == period
    request = buyers_lifecycle_request(query)
    assert request is not None
    assert (request.period, request.time_zone) == (period, "UTC")
    assert (request.time_range.start, request.time_range.end) == (
        to_timestamp(query.start),
        to_timestamp(query.end),
    )
    # One series: every event with revenue in the report's currency, counted as persons (no math).
    (series,) = request.series
    assert (series.label, series.currency_code, series.math, series.property) == ("Buyers", "GBP", 0, "")
    assert not series.HasField("event")
    assert not series.any_of
    assert not request.HasField("population")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START - timedelta(days=365 * 40), START),
        (datetime(1899, 12, 1, tzinfo=UTC), datetime(1900, 2, 1, tzinfo=UTC)),
        (datetime(2299, 11, 1, tzinfo=UTC), datetime(2299, 12, 31, tzinfo=UTC)),
    ],
)
def test_no_buyers_asked_where_the_trends_have_no_period(start: datetime, end: datetime) -> None:
    query = ReportQuery(start, end)
    assert lifecycle_period(query) is None
    assert buyers_lifecycle_request(query) is None
