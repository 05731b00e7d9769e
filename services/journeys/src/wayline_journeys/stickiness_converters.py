"""QueryStickiness: request → TrendQuery (every bad field reported at once), results → response.

A stickiness request holds a trend's fields (series, range, period, zone, breakdown, population) under the
same names, so it is read as the trend request it would be (trends_converters.trends_query), with the one
rule of its own: a series measures nothing but the periods its persons were active in.
"""

from __future__ import annotations

from datetime import datetime

from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import analytics_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.stickiness import StickinessResult
from wayline_journeys.trends import TrendQuery, trend_periods
from wayline_journeys.trends_converters import counting_query

__all__ = ["stickiness_query", "stickiness_response"]


def stickiness_query(tenant: str, request: pb.QueryStickinessRequest, now: datetime) -> TrendQuery:
    """The stickiness `request` asks for; InvalidArgument naming every bad field; `now` ends an open range."""
    why = "stickiness counts the periods each person was active in: leave math unset"
    return counting_query(tenant, request, now, "stickiness", why)


def _result(result: StickinessResult) -> trends_pb2.StickinessResult:
    key = result.key
    return trends_pb2.StickinessResult(
        series_index=result.series_index,
        label=result.label,
        breakdown_value=analytics_pb2.BreakdownValue(value=key.value, other=key.other, missing=key.missing),
        persons=result.persons,
        total_persons=result.total,
    )


def stickiness_response(query: TrendQuery, results: list[StickinessResult]) -> pb.QueryStickinessResponse:
    return pb.QueryStickinessResponse(
        results=[_result(r) for r in results],
        period_count=len(trend_periods(query)),
        end_time=to_timestamp(query.end),
    )
