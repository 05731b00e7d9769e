"""QueryRetention: request → RetentionQuery (every bad field reported at once), table → response."""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.time_zones import iana_zones
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import analytics_pb2, retention_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters as convert
from wayline_journeys.analytics import Breakdown, Population, SeriesKey
from wayline_journeys.retention import (
    RetentionPeriod,
    RetentionQuery,
    RetentionSeries,
    RetentionType,
    RetentionValue,
)

__all__ = [
    "MAX_PERIOD_COUNT",
    "PERIODS",
    "calendar_period",
    "retention_query",
    "retention_response",
    "time_zone",
]

MAX_PERIOD_COUNT = 100
DEFAULT_PERIOD_COUNT = 8

# A request's RetentionPeriod (unset: weeks), as retention, segment change counts and funnel trends read it.
PERIODS = {
    retention_pb2.RETENTION_PERIOD_UNSPECIFIED: RetentionPeriod.WEEK,
    retention_pb2.RETENTION_PERIOD_DAY: RetentionPeriod.DAY,
    retention_pb2.RETENTION_PERIOD_WEEK: RetentionPeriod.WEEK,
    retention_pb2.RETENTION_PERIOD_MONTH: RetentionPeriod.MONTH,
}
_TYPES = {
    retention_pb2.RETENTION_TYPE_UNSPECIFIED: RetentionType.BOUNDED,
    retention_pb2.RETENTION_TYPE_BOUNDED: RetentionType.BOUNDED,
    retention_pb2.RETENTION_TYPE_UNBOUNDED: RetentionType.UNBOUNDED,
}


def calendar_period(
    value: retention_pb2.RetentionPeriod.ValueType, path: str, violations: list[FieldViolation]
) -> RetentionPeriod | None:
    """The period of a request that counts days, weeks or months (unset: weeks); None after recording why
    `value` is not one (hours are QueryTrends' alone)."""
    if value == retention_pb2.RETENTION_PERIOD_HOUR:
        violations.append(FieldViolation(path, "hours are for QueryTrends only: use days, weeks or months"))
        return None
    found = PERIODS.get(value)
    if found is None:
        violations.append(FieldViolation(path, "not a RetentionPeriod"))
    return found


def time_zone(name: str, path: str, violations: list[FieldViolation]) -> str:
    """`name` when it is an IANA zone that Python's tz database knows ('' means UTC), else a violation.
    ClickHouse carries its own copy of the database; both know every canonical zone (`iana_zones`)."""
    if not name:
        return "UTC"
    if name not in iana_zones():
        violations.append(
            FieldViolation(path, f"{name!r} is not an IANA time zone (for example Europe/Paris)")
        )
    return name


def retention_query(tenant: str, request: pb.QueryRetentionRequest) -> RetentionQuery:
    """The query of a QueryRetentionRequest; INVALID_ARGUMENT names every bad field, then FAILED_PRECONDITION
    for segments."""
    violations: list[FieldViolation] = []
    period, kind = calendar_period(request.period, "period", violations), _TYPES.get(request.type)
    if kind is None:
        violations.append(FieldViolation("type", "not a RetentionType"))
    if not 0 <= request.period_count <= MAX_PERIOD_COUNT:
        violations.append(
            FieldViolation(
                "period_count", f"1 to {MAX_PERIOD_COUNT}, or 0 for {DEFAULT_PERIOD_COUNT}", "OUT_OF_RANGE"
            )
        )
    query = RetentionQuery(
        tenant=tenant,
        cohort_event=convert.event_matcher(request.cohort_event, "cohort_event", violations)
        if request.HasField("cohort_event")
        else None,
        return_event=convert.event_matcher(request.return_event, "return_event", violations)
        if request.HasField("return_event")
        else None,
        period=period or RetentionPeriod.WEEK,
        period_count=request.period_count or DEFAULT_PERIOD_COUNT,
        type=kind or RetentionType.BOUNDED,
        time_range=convert.time_range(request.time_range, "time_range", violations),
        time_zone=time_zone(request.time_zone, "time_zone", violations),
        breakdown=convert.breakdown(request.breakdown, "breakdown", violations)
        if request.HasField("breakdown")
        else Breakdown(),
        population=convert.population(request.population, "population", violations)
        if request.HasField("population")
        else Population(),
    )
    if violations:
        raise InvalidArgument("the retention analysis is invalid; see the field violations", violations)
    return query


def _value(value: RetentionValue) -> retention_pb2.RetentionValue:
    return retention_pb2.RetentionValue(
        period_index=value.period_index,
        retained_count=value.retained_count,
        retained_rate=value.retained_rate,
        complete=value.complete,
    )


def _series(series: RetentionSeries) -> retention_pb2.RetentionSeries:
    key = series.key
    return retention_pb2.RetentionSeries(
        breakdown_value=analytics_pb2.BreakdownValue(value=key.value, other=key.other, missing=key.missing),
        cohorts=[
            retention_pb2.RetentionCohort(
                period_start=to_timestamp(c.period_start),
                cohort_size=c.cohort_size,
                values=[_value(v) for v in c.values],
            )
            for c in series.cohorts
        ],
        average=[_value(v) for v in series.average],
    )


def retention_response(
    request: pb.QueryRetentionRequest, found: list[RetentionSeries]
) -> pb.QueryRetentionResponse:
    if not found and request.breakdown.dimension == analytics_pb2.BREAKDOWN_DIMENSION_UNSPECIFIED:
        found = [RetentionSeries(SeriesKey(), (), ())]  # one series without breakdown, even empty
    return pb.QueryRetentionResponse(series=[_series(s) for s in found])
