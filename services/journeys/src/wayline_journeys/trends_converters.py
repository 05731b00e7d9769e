"""QueryTrends: request → TrendQuery (every bad field reported at once), results → response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import analytics_pb2, retention_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters as convert
from wayline_journeys.analytics import Breakdown, Population
from wayline_journeys.customer_value_converters import CURRENCY_CODE
from wayline_journeys.retention import CALENDAR_END, CALENDAR_START, within_calendar
from wayline_journeys.retention_converters import time_zone
from wayline_journeys.trend_formulas import Formula, FormulaError, parse_formula
from wayline_journeys.trends import (
    MAX_TREND_PERIODS,
    TrendMath,
    TrendPeriod,
    TrendQuery,
    TrendResult,
    TrendSeries,
    previous_query,
    trend_periods,
)

__all__ = ["MAX_FORMULAS", "MAX_SERIES", "counting_query", "trends_query", "trends_response", "with_previous"]

MAX_SERIES = 10
MAX_FORMULAS = 5
MAX_ALTERNATIVES = 10

_PERIODS = {
    retention_pb2.RETENTION_PERIOD_UNSPECIFIED: TrendPeriod.WEEK,
    retention_pb2.RETENTION_PERIOD_HOUR: TrendPeriod.HOUR,
    retention_pb2.RETENTION_PERIOD_DAY: TrendPeriod.DAY,
    retention_pb2.RETENTION_PERIOD_WEEK: TrendPeriod.WEEK,
    retention_pb2.RETENTION_PERIOD_MONTH: TrendPeriod.MONTH,
}
_MATHS = {
    trends_pb2.TREND_MATH_UNSPECIFIED: TrendMath.TOTAL,
    trends_pb2.TREND_MATH_TOTAL: TrendMath.TOTAL,
    trends_pb2.TREND_MATH_UNIQUE_PERSONS: TrendMath.UNIQUE_PERSONS,
    trends_pb2.TREND_MATH_EVENTS_PER_PERSON: TrendMath.EVENTS_PER_PERSON,
    trends_pb2.TREND_MATH_SUM: TrendMath.SUM,
    trends_pb2.TREND_MATH_AVERAGE: TrendMath.AVERAGE,
    trends_pb2.TREND_MATH_MINIMUM: TrendMath.MINIMUM,
    trends_pb2.TREND_MATH_MAXIMUM: TrendMath.MAXIMUM,
    trends_pb2.TREND_MATH_MEDIAN: TrendMath.MEDIAN,
    trends_pb2.TREND_MATH_P90: TrendMath.P90,
    trends_pb2.TREND_MATH_P99: TrendMath.P99,
    trends_pb2.TREND_MATH_WEEKLY_ACTIVE_PERSONS: TrendMath.WEEKLY_ACTIVE_PERSONS,
    trends_pb2.TREND_MATH_MONTHLY_ACTIVE_PERSONS: TrendMath.MONTHLY_ACTIVE_PERSONS,
}


def _series(message: trends_pb2.TrendSeries, path: str, violations: list[FieldViolation]) -> TrendSeries:
    math = _MATHS.get(message.math)
    if math is None:
        violations.append(FieldViolation(f"{path}.math", "not a TrendMath"))
        math = TrendMath.TOTAL
    if math.of_property and not message.property:
        violations.append(
            FieldViolation(
                f"{path}.property", f"{math.name} measures a numeric property: name one", "REQUIRED"
            )
        )
    elif math.of_property and not convert.numeric_event_path(message.property):
        violations.append(FieldViolation(f"{path}.property", convert.NUMERIC_PATH_HINT))
    elif not math.of_property and message.property:
        violations.append(
            FieldViolation(f"{path}.property", f"{math.name} measures no property; leave it empty")
        )
    if message.property == "revenue" and math.of_property and not message.currency_code:
        violations.append(
            FieldViolation(
                f"{path}.currency_code",
                "revenue is measured in one currency: an ISO 4217 code such as EUR",
                "REQUIRED",
            )
        )
    elif message.currency_code and not CURRENCY_CODE.fullmatch(message.currency_code):
        violations.append(
            FieldViolation(f"{path}.currency_code", "an ISO 4217 code: three upper-case letters such as EUR")
        )
    if len(message.any_of) > MAX_ALTERNATIVES:
        violations.append(
            FieldViolation(f"{path}.any_of", f"at most {MAX_ALTERNATIVES} alternatives", "OUT_OF_RANGE")
        )
    matchers = [
        convert.event_matcher(m, f"{path}.any_of[{i}]", violations) for i, m in enumerate(message.any_of)
    ]
    if message.HasField("event") or not matchers:
        matchers.insert(0, convert.event_matcher(message.event, f"{path}.event", violations))
    label = message.label or (matchers[0].name if matchers[0].name else "all events")
    return TrendSeries(label, tuple(matchers), math, message.property, message.currency_code)


def _span(
    request: pb.QueryTrendsRequest, now: datetime, violations: list[FieldViolation]
) -> tuple[datetime, datetime]:
    """[start, end) of the trend (an unset end is `now`); the violations say what is wrong with it."""
    span = convert.time_range(request.time_range, "time_range", violations)
    start, end = span.start, span.end or now
    if start is None:
        violations.append(
            FieldViolation("time_range.start", "a trend needs the start of its range", "REQUIRED")
        )
        return now, now
    if span.end is None and start >= now:
        violations.append(
            FieldViolation(
                "time_range.start", "a range without an end must start before now", "INVALID_RANGE"
            )
        )
    elif not within_calendar(start, end):
        violations.append(
            FieldViolation(
                "time_range",
                f"a trend's range must lie between {CALENDAR_START:%Y-%m-%d} and {CALENDAR_END:%Y-%m-%d}",
                "OUT_OF_RANGE",
            )
        )
    return start, end


def _formulas(request: pb.QueryTrendsRequest, violations: list[FieldViolation]) -> tuple[Formula, ...]:
    if len(request.formulas) > MAX_FORMULAS:
        violations.append(FieldViolation("formulas", f"at most {MAX_FORMULAS} formulas", "OUT_OF_RANGE"))
    found = []
    for i, formula in enumerate(request.formulas):
        try:
            found.append(parse_formula(formula.label, formula.expression, len(request.series)))
        except FormulaError as error:
            violations.append(
                FieldViolation(
                    f"formulas[{i}].expression",
                    f"{error}: use the series' letters (A is series[0]), numbers, + - * / and parentheses",
                )
            )
    return tuple(found)


def trends_query(tenant: str, request: pb.QueryTrendsRequest, now: datetime) -> TrendQuery:
    """The trend `request` asks for; InvalidArgument naming every bad field. `now` ends an unset range."""
    violations: list[FieldViolation] = []
    if not 0 < len(request.series) <= MAX_SERIES:
        violations.append(FieldViolation("series", f"1 to {MAX_SERIES} series", "OUT_OF_RANGE"))
    series = tuple(_series(s, f"series[{i}]", violations) for i, s in enumerate(request.series))
    period = _PERIODS.get(request.period)
    if period is None:
        violations.append(FieldViolation("period", "not a RetentionPeriod"))
    zone = time_zone(request.time_zone, "time_zone", violations)
    start, end = _span(request, now, violations)
    query = TrendQuery(
        tenant=tenant,
        series=series,
        start=start,
        end=end,
        period=period or TrendPeriod.WEEK,
        time_zone=zone,
        breakdown=convert.breakdown(request.breakdown, "breakdown", violations)
        if request.HasField("breakdown")
        else Breakdown(),
        population=convert.population(request.population, "population", violations)
        if request.HasField("population")
        else Population(),
        formulas=_formulas(request, violations),
        compare_to_previous=request.compare_to_previous,
    )
    if not violations and len(trend_periods(query)) > MAX_TREND_PERIODS:
        violations.append(
            FieldViolation(
                "time_range",
                f"spans more than {MAX_TREND_PERIODS} periods; narrow it or use longer periods",
                "OUT_OF_RANGE",
            )
        )
    if not violations and query.compare_to_previous:
        earlier = previous_query(query)
        if not within_calendar(earlier.start, earlier.end):
            violations.append(
                FieldViolation(
                    "compare_to_previous",
                    f"the previous range would start before {CALENDAR_START:%Y-%m-%d}; start the range later",
                    "OUT_OF_RANGE",
                )
            )
        elif len(trend_periods(earlier)) > MAX_TREND_PERIODS:
            violations.append(
                FieldViolation(
                    "compare_to_previous",
                    f"the previous range spans more than {MAX_TREND_PERIODS} periods; narrow the range",
                    "OUT_OF_RANGE",
                )
            )
    if query.period is not TrendPeriod.DAY:
        violations.extend(
            FieldViolation(
                f"series[{i}].math",
                f"{query.series[i].math.name} counts per day: set period to RETENTION_PERIOD_DAY",
            )
            for i in query.rolling
        )
    if violations:
        raise InvalidArgument("the trend is invalid; see the field violations", violations)
    return query


_COUNTING = (trends_pb2.TREND_MATH_UNSPECIFIED, trends_pb2.TREND_MATH_TOTAL)
# The fields a counting request (QueryStickiness, QueryActivityLifecycle) may share with a trend's.
_SHARED_MESSAGES = ("time_range", "breakdown", "population")


def counting_query(tenant: str, request: Any, now: datetime, insight: str, why_no_math: str) -> TrendQuery:
    """The TrendQuery of `request`, a message holding a trend's series, range, period, zone and population
    (and breakdown, where it has one) under the same names, whose series count active persons: a series with
    a math is refused with `why_no_math`, and what the trend would say of that series' math or property does
    not apply. InvalidArgument names every bad field (`insight` names the query); `now` ends an open range."""
    violations = [
        FieldViolation(f"series[{i}].math", why_no_math)
        for i, s in enumerate(request.series)
        if s.math not in _COUNTING
    ]
    as_trend = pb.QueryTrendsRequest(
        series=request.series, period=request.period, time_zone=request.time_zone
    )
    fields = request.DESCRIPTOR.fields_by_name
    for name in _SHARED_MESSAGES:  # set or not, as the trend reads them
        if name in fields and request.HasField(name):
            getattr(as_trend, name).CopyFrom(getattr(request, name))
    try:
        query = trends_query(tenant, as_trend, now)
    except InvalidArgument as error:
        measured = {v.field.removesuffix(".math") for v in violations}
        violations.extend(v for v in error.violations if v.field.rsplit(".", 1)[0] not in measured)
    if violations:
        raise InvalidArgument(f"the {insight} query is invalid; see the field violations", violations)
    return query


def _result(result: TrendResult) -> trends_pb2.TrendResult:
    key = result.key
    found = trends_pb2.TrendResult(
        series_index=result.series_index,
        label=result.label,
        breakdown_value=analytics_pb2.BreakdownValue(value=key.value, other=key.other, missing=key.missing),
        event_count=result.events,
    )
    if result.total is not None:
        found.total = result.total
    for p in result.points:
        point = found.points.add(
            period_start=to_timestamp(p.period_start), event_count=p.events, complete=p.complete
        )
        if p.value is not None:
            point.value = p.value
    return found


def trends_response(
    query: TrendQuery, results: list[TrendResult], formulas: list[TrendResult]
) -> pb.QueryTrendsResponse:
    return pb.QueryTrendsResponse(
        results=[_result(r) for r in results],
        end_time=to_timestamp(query.end),
        formula_results=[_result(r) for r in formulas],
    )


def with_previous(
    response: pb.QueryTrendsResponse,
    earlier: TrendQuery,
    results: list[TrendResult],
    formulas: list[TrendResult],
) -> pb.QueryTrendsResponse:
    """`response` with the previous range's results (compare_to_previous)."""
    response.previous_start_time.CopyFrom(to_timestamp(earlier.start))
    response.previous_results.extend(_result(r) for r in results)
    response.previous_formula_results.extend(_result(r) for r in formulas)
    return response
