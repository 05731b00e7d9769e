"""What `wayline report` asks QueryFunnel for its trend: the shortest periods that keep the line readable, and
no trend where QueryFunnel would refuse one, so that a long or early range still gets its funnel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wayline.journeys.v1 import retention_pb2
from wayline_cli.report.requests import ReportQuery, funnel_request, funnel_trend

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
