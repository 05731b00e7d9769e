"""QueryActivityLifecycle and ListActivityLifecyclePersons: requests → TrendQuery (every bad field reported
at once) and the page of persons, results → responses.

The request holds a trend's series, range, period, zone and population under the same names, so it is read
as the trend request it would be (trends_converters.counting_query): its series count active persons. The
persons' page tokens are ListFunnelPersons' (person_pages.py).
"""

from __future__ import annotations

from datetime import datetime

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import trends_pb2
from wayline_journeys.activity_lifecycle import ActivityStatus, LifecyclePersonsPage, LifecycleResult
from wayline_journeys.person_pages import (
    next_page,
    page_bounds,
    page_size_violations,
    request_fingerprint,
    unpaged,
)
from wayline_journeys.trends import TrendQuery, dated_periods
from wayline_journeys.trends_converters import counting_query

__all__ = [
    "activity_lifecycle_query",
    "activity_lifecycle_response",
    "lifecycle_persons_request",
    "lifecycle_persons_response",
]

_RPC = "ListActivityLifecyclePersons"
_STATUSES = {
    trends_pb2.ACTIVITY_STATUS_NEW: ActivityStatus.NEW,
    trends_pb2.ACTIVITY_STATUS_RETURNING: ActivityStatus.RETURNING,
    trends_pb2.ACTIVITY_STATUS_RESURRECTING: ActivityStatus.RESURRECTING,
    trends_pb2.ACTIVITY_STATUS_DORMANT: ActivityStatus.DORMANT,
}


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


def _fingerprint(tenant: str, request: pb.ListActivityLifecyclePersonsRequest) -> str:
    return request_fingerprint(tenant, unpaged(request))


def _period(query: TrendQuery, request: pb.ListActivityLifecyclePersonsRequest, now: datetime) -> int | None:
    """The index of the range's period that `period_start` starts; None when it starts none."""
    if not request.HasField("period_start"):
        return None
    _, instants, _ = dated_periods(query, now)
    wanted = to_datetime(request.period_start)
    return next((n for n, start in enumerate(instants) if start == wanted), None)


def lifecycle_persons_request(
    tenant: str, request: pb.ListActivityLifecyclePersonsRequest, now: datetime
) -> tuple[TrendQuery, LifecyclePersonsPage]:
    """The lifecycle and the page of persons `request` asks for; InvalidArgument naming every bad field."""
    violations: list[FieldViolation] = []
    query: TrendQuery | None = None
    try:
        query = activity_lifecycle_query(tenant, request.lifecycle, now)
    except InvalidArgument as error:
        violations.extend(
            FieldViolation(f"lifecycle.{v.field}", v.description, v.reason) for v in error.violations
        )
    if not 0 <= request.series_index < max(len(request.lifecycle.series), 1):
        violations.append(FieldViolation("series_index", "a series of the lifecycle", "OUT_OF_RANGE"))
    period = _period(query, request, now) if query is not None else 0
    if period is None:
        violations.append(
            FieldViolation("period_start", "the period_start of one of the lifecycle's points (its periods)")
        )
    status = _STATUSES.get(request.status)
    if status is None:
        violations.append(FieldViolation("status", "one of new, returning, resurrecting or dormant"))
    violations.extend(page_size_violations(request))
    if violations or query is None or period is None or status is None:
        raise InvalidArgument("the request is not valid; see the field violations", violations)
    after, limit = page_bounds(request, _RPC, _fingerprint(tenant, request))
    return query, LifecyclePersonsPage(request.series_index, period, status, after, limit)


def lifecycle_persons_response(
    tenant: str, request: pb.ListActivityLifecyclePersonsRequest, found: list[str], page: LifecyclePersonsPage
) -> pb.ListActivityLifecyclePersonsResponse:
    shown, token = next_page(found, page.limit, _fingerprint(tenant, request))
    return pb.ListActivityLifecyclePersonsResponse(person_ids=shown, next_page_token=token)
