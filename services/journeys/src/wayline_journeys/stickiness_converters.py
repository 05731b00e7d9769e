"""QueryStickiness: request → TrendQuery (every bad field reported at once), results → response.

A stickiness request holds a trend's fields (series, range, period, zone, breakdown, population) under the
same names, so it is read as the trend request it would be (trends_converters.trends_query), with the one
rule of its own: a series measures nothing but the periods its persons were active in.
"""

from __future__ import annotations

from datetime import datetime

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import analytics_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.stickiness import StickinessResult
from wayline_journeys.trends import TrendQuery, trend_periods
from wayline_journeys.trends_converters import trends_query

__all__ = ["stickiness_query", "stickiness_response"]

_COUNTING = (trends_pb2.TREND_MATH_UNSPECIFIED, trends_pb2.TREND_MATH_TOTAL)


def stickiness_query(tenant: str, request: pb.QueryStickinessRequest, now: datetime) -> TrendQuery:
    """The stickiness `request` asks for; InvalidArgument naming every bad field; `now` ends an open range."""
    violations = [
        FieldViolation(
            f"series[{i}].math",
            "stickiness counts the periods each person was active in: leave math unset",
        )
        for i, s in enumerate(request.series)
        if s.math not in _COUNTING
    ]
    as_trend = pb.QueryTrendsRequest(
        series=request.series, period=request.period, time_zone=request.time_zone
    )
    for name in ("time_range", "breakdown", "population"):  # set or not, as the trend reads them
        if request.HasField(name):
            getattr(as_trend, name).CopyFrom(getattr(request, name))
    try:
        query = trends_query(tenant, as_trend, now)
    except InvalidArgument as error:
        # A series with a math is reported above with the reason that fits stickiness; what the trend says
        # of its math or property (a sum needs a property) does not apply.
        measured = {v.field.removesuffix(".math") for v in violations}
        violations.extend(v for v in error.violations if v.field.rsplit(".", 1)[0] not in measured)
    if violations:
        raise InvalidArgument("the stickiness query is invalid; see the field violations", violations)
    return query


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
