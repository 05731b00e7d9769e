"""QueryActivityLifecycle: request → TrendQuery (every bad field reported at once), results → response.

The request holds a trend's series, range, period, zone and population under the same names, so it is read
as the trend request it would be (trends_converters.counting_query): its series count active persons.
"""

from __future__ import annotations

from datetime import datetime

from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import trends_pb2
from wayline_journeys.activity_lifecycle import LifecycleResult
from wayline_journeys.trends import TrendQuery
from wayline_journeys.trends_converters import counting_query

__all__ = ["activity_lifecycle_query", "activity_lifecycle_response"]


def activity_lifecycle_query(
    tenant: str, request: pb.QueryActivityLifecycleRequest, now: datetime
) -> TrendQuery:
    """The lifecycle `request` asks for; InvalidArgument naming every bad field; `now` ends an open range."""
    why = "the activity lifecycle counts the persons active in each period: leave math unset"
    return counting_query(tenant, request, now, "activity lifecycle", why)


def _result(result: LifecycleResult) -> trends_pb2.ActivityLifecycleResult:
    return trends_pb2.ActivityLifecycleResult(
        series_index=result.series_index,
        label=result.label,
        points=[
            trends_pb2.ActivityLifecyclePoint(
                period_start=to_timestamp(p.period_start),
                new_persons=p.new,
                returning_persons=p.returning,
                resurrecting_persons=p.resurrecting,
                dormant_persons=p.dormant,
                complete=p.complete,
            )
            for p in result.points
        ],
    )


def activity_lifecycle_response(
    query: TrendQuery, results: list[LifecycleResult]
) -> pb.QueryActivityLifecycleResponse:
    return pb.QueryActivityLifecycleResponse(
        results=[_result(r) for r in results], end_time=to_timestamp(query.end)
    )
