"""QueryFunnel: the request → FunnelQuery (every bad field reported at once), the result → the response.
ListFunnelPersons reuses the request side (funnel_persons.py)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from google.protobuf import duration_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys import analytics_converters as convert
from wayline_journeys.analytics import EventMatcher, SeriesKey, TimeRange
from wayline_journeys.converters import channel_names
from wayline_journeys.funnels import (
    DAY_US,
    MAX_TREND_PERIODS,
    Attribution,
    FunnelExclusion,
    FunnelOrder,
    FunnelQuery,
    FunnelResult,
    FunnelStep,
    FunnelTrend,
    StepStats,
    TimeStats,
    TrendPoint,
    automatic_bounds,
    trend_periods,
)
from wayline_journeys.retention import CALENDAR_END, CALENDAR_START, within_calendar
from wayline_journeys.retention_converters import calendar_period, time_zone

__all__ = ["funnel_query", "funnel_response"]

MIN_STEPS, MAX_STEPS, MAX_ALTERNATIVES, MAX_SAMPLE, MAX_BOUNDS = 2, 20, 10, 100, 50
MAX_WINDOW_US = 365 * DAY_US
_ORDERS = {
    funnel_pb2.FUNNEL_ORDER_UNSPECIFIED: FunnelOrder.ORDERED,
    funnel_pb2.FUNNEL_ORDER_ORDERED: FunnelOrder.ORDERED,
    funnel_pb2.FUNNEL_ORDER_STRICT: FunnelOrder.STRICT,
    funnel_pb2.FUNNEL_ORDER_ANY: FunnelOrder.ANY,
}
_ATTRIBUTIONS = {
    funnel_pb2.FUNNEL_BREAKDOWN_ATTRIBUTION_UNSPECIFIED: Attribution.FIRST_STEP,
    funnel_pb2.FUNNEL_BREAKDOWN_ATTRIBUTION_FIRST_STEP: Attribution.FIRST_STEP,
    funnel_pb2.FUNNEL_BREAKDOWN_ATTRIBUTION_LAST_STEP: Attribution.LAST_STEP,
    funnel_pb2.FUNNEL_BREAKDOWN_ATTRIBUTION_EACH_STEP: Attribution.EACH_STEP,
}


def _micros(value: duration_pb2.Duration) -> int:
    return value.seconds * 1_000_000 + int(value.nanos / 1_000)


def _duration(micros: float) -> duration_pb2.Duration:
    found = duration_pb2.Duration()
    found.FromNanoseconds(round(micros * 1_000))
    return found


def _matchers(
    event: analytics_pb2.EventMatcher | None,
    alternatives: Any,
    path: str,
    violations: list[FieldViolation],
) -> tuple[EventMatcher, ...]:
    found = [convert.event_matcher(event, f"{path}.event", violations)] if event is not None else []
    if len(alternatives) > MAX_ALTERNATIVES:
        violations.append(FieldViolation(f"{path}.any_of", f"at most {MAX_ALTERNATIVES}", "OUT_OF_RANGE"))
    found += [convert.event_matcher(m, f"{path}.any_of[{i}]", violations) for i, m in enumerate(alternatives)]
    if not found:
        violations.append(FieldViolation(f"{path}.event", "set `event` or `any_of`", "REQUIRED"))
    return tuple(found)


def _step(
    message: funnel_pb2.FunnelStep, i: int, order: FunnelOrder, prefix: str, violations: list[FieldViolation]
) -> FunnelStep:
    path = f"{prefix}steps[{i}]"
    matchers = _matchers(
        message.event if message.HasField("event") else None, message.any_of, path, violations
    )
    low = _micros(message.min_gap_from_previous)
    high = _micros(message.max_gap_from_previous) if message.HasField("max_gap_from_previous") else None
    if i > 0 and order is FunnelOrder.ANY and (low or high is not None):
        field = "min_gap_from_previous" if low else "max_gap_from_previous"
        violations.append(
            FieldViolation(f"{path}.{field}", "ANY order has no previous step; gaps need an order")
        )
    if low < 0:
        violations.append(
            FieldViolation(f"{path}.min_gap_from_previous", "must not be negative", "OUT_OF_RANGE")
        )
    if high is not None and not 0 < high <= MAX_WINDOW_US:
        violations.append(
            FieldViolation(f"{path}.max_gap_from_previous", "above 0, at most 365 days", "OUT_OF_RANGE")
        )
    elif high is not None and low > high:
        violations.append(
            FieldViolation(
                f"{path}.min_gap_from_previous", "must not exceed max_gap_from_previous", "INVALID_RANGE"
            )
        )
    label = message.label or next((m.name for m in matchers if m.name), "") or f"Step {i + 1}"
    return FunnelStep(label, matchers, max(low, 0) if i else 0, high if i else None)


def _exclusion(
    message: funnel_pb2.FunnelExclusion, i: int, steps: int, prefix: str, violations: list[FieldViolation]
) -> FunnelExclusion:
    path = f"{prefix}exclusions[{i}]"
    matchers = _matchers(
        message.event if message.HasField("event") else None, message.any_of, path, violations
    )
    if not 0 <= message.from_step < steps - 1:
        violations.append(FieldViolation(f"{path}.from_step", f"0 to {steps - 2}", "OUT_OF_RANGE"))
    if not message.from_step < message.to_step <= steps - 1:
        violations.append(
            FieldViolation(f"{path}.to_step", f"above from_step, at most {steps - 1}", "OUT_OF_RANGE")
        )
    return FunnelExclusion(matchers, message.from_step, message.to_step)


def _bounds(
    request: pb.QueryFunnelRequest, window_us: int, prefix: str, violations: list[FieldViolation]
) -> tuple[int, ...]:
    if not request.time_to_convert_bucket_bounds:
        return automatic_bounds(window_us)
    bounds = tuple(_micros(b) for b in request.time_to_convert_bucket_bounds)
    path = f"{prefix}time_to_convert_bucket_bounds"
    if len(bounds) > MAX_BOUNDS:
        violations.append(FieldViolation(path, f"at most {MAX_BOUNDS} bounds", "OUT_OF_RANGE"))
    if bounds[0] <= 0 or any(b <= a for a, b in itertools.pairwise(bounds)):
        violations.append(FieldViolation(path, "bounds must be positive and increasing", "INVALID_RANGE"))
    return bounds


def _event_filter(
    request: pb.QueryFunnelRequest, prefix: str, violations: list[FieldViolation]
) -> EventMatcher:
    channels = channel_names(request.channels, f"{prefix}channels", violations)
    filters = []
    for i, message in enumerate(request.event_filters):
        path = f"{prefix}event_filters[{i}]"
        found = convert.property_filter(message, path, violations)
        if found is not None and found.on_person:
            violations.append(
                FieldViolation(f"{path}.property", "event paths only; use population.person_filters")
            )
        elif found is not None:
            filters.append(found)
    return EventMatcher(
        channels=channels,
        filters=tuple(filters),
    )


def _trend(
    request: pb.QueryFunnelRequest, span: TimeRange, now: datetime, violations: list[FieldViolation]
) -> FunnelTrend | None:
    """The trend the request asks for over the time range (an unset end is `now`), or None."""
    if not request.HasField("trend"):
        return None
    reported = len(violations)
    period = calendar_period(request.trend.period, "trend.period", violations)
    zone = time_zone(request.trend.time_zone, "trend.time_zone", violations)
    end = span.end or now
    if span.start is None:
        violations.append(
            FieldViolation("time_range.start", "a trend needs the start of the time range", "REQUIRED")
        )
    elif span.end is None and span.start >= now:
        violations.append(
            FieldViolation(
                "time_range.start", "a trend's range without an end must start before now", "INVALID_RANGE"
            )
        )
    elif not within_calendar(span.start, end):
        violations.append(
            FieldViolation(
                "time_range",
                f"a trend's range must lie between {CALENDAR_START:%Y-%m-%d} and {CALENDAR_END:%Y-%m-%d}",
                "OUT_OF_RANGE",
            )
        )
    if period is None or span.start is None or len(violations) > reported:
        return None
    trend = FunnelTrend(period, zone, span.start, end)
    if len(trend_periods(trend)) > MAX_TREND_PERIODS:
        violations.append(
            FieldViolation(
                "time_range",
                f"spans more than {MAX_TREND_PERIODS} periods of the trend; narrow it or use longer periods",
                "OUT_OF_RANGE",
            )
        )
    return trend


def funnel_query(
    tenant: str, request: pb.QueryFunnelRequest, prefix: str = "", now: datetime | None = None
) -> FunnelQuery:
    """The funnel `request` asks for; InvalidArgument naming every bad field (paths start with `prefix`).
    `now` ends a trend's unset range; without it (ListFunnelPersons) the trend is not read."""
    violations: list[FieldViolation] = []
    order = _ORDERS.get(request.order)
    if order is None:
        violations.append(FieldViolation(f"{prefix}order", "not a FunnelOrder"))
        order = FunnelOrder.ORDERED
    attribution = _ATTRIBUTIONS.get(request.breakdown_attribution)
    if attribution is None:
        violations.append(
            FieldViolation(f"{prefix}breakdown_attribution", "not a FunnelBreakdownAttribution")
        )
    if not MIN_STEPS <= len(request.steps) <= MAX_STEPS:
        violations.append(
            FieldViolation(f"{prefix}steps", f"{MIN_STEPS} to {MAX_STEPS} steps", "OUT_OF_RANGE")
        )
    steps = tuple(_step(s, i, order, prefix, violations) for i, s in enumerate(request.steps))
    window = _micros(request.conversion_window) if request.HasField("conversion_window") else 14 * DAY_US
    if not 0 < window <= MAX_WINDOW_US:
        violations.append(
            FieldViolation(f"{prefix}conversion_window", "above 0, at most 365 days", "OUT_OF_RANGE")
        )
    if request.exclusions and order is FunnelOrder.ANY:
        violations.append(
            FieldViolation(f"{prefix}exclusions", "ANY order has no steps between; use an order")
        )
    exclusions = tuple(
        _exclusion(x, i, len(request.steps), prefix, violations) for i, x in enumerate(request.exclusions)
    )
    if not 0 <= request.person_sample_size <= MAX_SAMPLE:
        violations.append(FieldViolation(f"{prefix}person_sample_size", f"0 to {MAX_SAMPLE}", "OUT_OF_RANGE"))
    span = convert.time_range(request.time_range, f"{prefix}time_range", violations)
    query = FunnelQuery(
        tenant=tenant,
        steps=steps,
        order=order,
        window_us=window,
        exclusions=exclusions,
        time_range=span,
        breakdown=convert.breakdown(request.breakdown, f"{prefix}breakdown", violations),
        attribution=attribution or Attribution.FIRST_STEP,
        population=convert.population(request.population, f"{prefix}population", violations),
        event_filter=_event_filter(request, prefix, violations),
        sample_size=request.person_sample_size,
        bounds_us=_bounds(request, window, prefix, violations),
        trend=_trend(request, span, now, violations) if now is not None else None,
    )
    if violations:
        raise InvalidArgument("the funnel is not valid; see the field violations", violations)
    return query


def _zeros(query: FunnelQuery) -> tuple[int, ...]:
    return (0,) * (len(query.bounds_us) + 1)


def _buckets(query: FunnelQuery, counts: tuple[int, ...]) -> list[funnel_pb2.TimeToConvertBucket]:
    if not counts:
        return []
    lowers = (0, *query.bounds_us)
    found = []
    for i, count in enumerate(counts):
        bucket = funnel_pb2.TimeToConvertBucket(lower_bound=_duration(lowers[i]), count=count)
        if i < len(query.bounds_us):
            bucket.upper_bound.CopyFrom(_duration(query.bounds_us[i]))
        found.append(bucket)
    return found


def _times(times: TimeStats) -> tuple[duration_pb2.Duration | None, duration_pb2.Duration | None]:
    mean = _duration(times.mean_us) if times.mean_us is not None else None
    median = _duration(times.median_us) if times.median_us is not None else None
    return mean, median


def _step_result(
    query: FunnelQuery, i: int, stats: StepStats, first: int, previous: int
) -> funnel_pb2.FunnelStepResult:
    n = len(query.steps)
    label = query.steps[i].label if query.order is not FunnelOrder.ANY else f"{i + 1} of {n} steps"
    mean, median = _times(stats.times)
    return funnel_pb2.FunnelStepResult(
        step_index=i,
        label=label,
        count=stats.count,
        drop_off_count=previous - stats.count if i else 0,
        conversion_rate=(stats.count / previous if previous else 0.0) if i else 1.0,
        overall_conversion_rate=stats.count / first if first else 0.0,
        average_time_to_convert=mean,
        median_time_to_convert=median,
        converted_person_sample=stats.converted_sample,
        dropped_person_sample=stats.dropped_sample if i else (),
        time_to_convert_histogram=_buckets(query, stats.times.histogram or _zeros(query)) if i else [],
    )


def _value(key: SeriesKey) -> analytics_pb2.BreakdownValue:
    return analytics_pb2.BreakdownValue(value=key.value, other=key.other, missing=key.missing)


def _trend_point(point: TrendPoint) -> funnel_pb2.FunnelTrendPoint:
    counts = point.step_counts
    return funnel_pb2.FunnelTrendPoint(
        period_start=to_timestamp(point.period_start),
        step_counts=counts,
        conversion_rate=counts[-1] / counts[0] if counts[0] else 0.0,
        complete=point.complete,
    )


def funnel_response(query: FunnelQuery, result: FunnelResult) -> pb.QueryFunnelResponse:
    response = pb.QueryFunnelResponse()
    for series in result.series:
        counts = [s.count for s in series.steps]
        mean, median = _times(series.conversion)
        response.series.append(
            funnel_pb2.FunnelSeries(
                breakdown_value=_value(series.key),
                steps=[
                    _step_result(query, i, s, counts[0], counts[i - 1] if i else counts[0])
                    for i, s in enumerate(series.steps)
                ],
                average_conversion_time=mean,
                median_conversion_time=median,
                conversion_time_histogram=_buckets(query, series.conversion.histogram or _zeros(query)),
                trend=[_trend_point(p) for p in series.trend],
            )
        )
    return response
