"""`wayline trends`: events measured over time, via the gateway (QueryTrends; trend_persons.py for
QueryStickiness and QueryActivityLifecycle).

Each EVENT named is a series (none: every event), measured by `--math` (how many events, persons, events per
person, the rolling weekly or monthly active persons of each day, or the sum, mean, extremes or percentiles
of `--property`) per hour, day, week or month of the range in a time zone, and over the whole range; `--by`
breaks each series down by channel, an event property, a person trait or segments; each `--formula` adds a
line computed from the series (`B / A * 100`: A is the first EVENT's series), and `--compare` measures the
previous range too (as long, ending where this one starts). `--stickiness` asks how habitual each EVENT is
instead: of the persons who performed it, how many did so in exactly 1, 2, … of the periods; `--lifecycle`
how the persons performing it changed: each period's new, returning, resurrecting and dormant persons.
`--sentiment` asks what customers felt instead: the mean sentiment score of the events that carry one and
their shares below, inside and above VADER's neutral band (|score| < 0.05), with the net sentiment
(positive share less negative share). With `--json`, the response as the API returns it.
"""

from __future__ import annotations

import sys
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from google.protobuf import json_format, struct_pb2
from rich.table import Table

from wayline.common.time_zones import iana_zones, load_zone
from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import analytics_pb2, retention_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_cli.decisions import parse_time
from wayline_cli.gateway import GATEWAY, GatewayOption, ReadKeyOption, TlsOption, call, out
from wayline_cli.trend_format import period_label, share, value_name
from wayline_cli.trend_persons import STATUSES, show_lifecycle, show_stickiness

__all__ = ["NEUTRAL_BAND", "sentiment_request", "trends_command"]

NEUTRAL_BAND = 0.05
"""VADER's neutral band, as ingest's enrichment reads scores (docs/enrichment.md)."""

_MATHS = {
    "total": trends_pb2.TREND_MATH_TOTAL,
    "persons": trends_pb2.TREND_MATH_UNIQUE_PERSONS,
    "per-person": trends_pb2.TREND_MATH_EVENTS_PER_PERSON,
    "sum": trends_pb2.TREND_MATH_SUM,
    "average": trends_pb2.TREND_MATH_AVERAGE,
    "min": trends_pb2.TREND_MATH_MINIMUM,
    "max": trends_pb2.TREND_MATH_MAXIMUM,
    "median": trends_pb2.TREND_MATH_MEDIAN,
    "p90": trends_pb2.TREND_MATH_P90,
    "p99": trends_pb2.TREND_MATH_P99,
    "weekly-active": trends_pb2.TREND_MATH_WEEKLY_ACTIVE_PERSONS,
    "monthly-active": trends_pb2.TREND_MATH_MONTHLY_ACTIVE_PERSONS,
}
_COUNTING = ("total", "persons", "weekly-active", "monthly-active")
_PERIODS = {
    "hour": retention_pb2.RETENTION_PERIOD_HOUR,
    "day": retention_pb2.RETENTION_PERIOD_DAY,
    "week": retention_pb2.RETENTION_PERIOD_WEEK,
    "month": retention_pb2.RETENTION_PERIOD_MONTH,
}
_SCORE = "sentiment_score"


def _score_filter(
    operator: analytics_pb2.FilterOperator.ValueType, bound: float
) -> analytics_pb2.PropertyFilter:
    return analytics_pb2.PropertyFilter(
        property=_SCORE, operator=operator, values=[struct_pb2.Value(number_value=bound)]
    )


def _band(events: list[str], label: str, *filters: analytics_pb2.PropertyFilter) -> trends_pb2.TrendSeries:
    """Events (of these names, or any) whose score passes every filter, counted."""
    series = trends_pb2.TrendSeries(label=label, math=trends_pb2.TREND_MATH_TOTAL)
    if len(events) == 1:
        series.event.CopyFrom(analytics_pb2.EventMatcher(event_name=events[0], property_filters=filters))
    elif events:
        series.any_of.extend(
            analytics_pb2.EventMatcher(event_name=e, property_filters=filters) for e in events
        )
    else:
        series.event.CopyFrom(analytics_pb2.EventMatcher(property_filters=filters))
    return series


def sentiment_request(events: list[str]) -> list[trends_pb2.TrendSeries]:
    """The series of `--sentiment`: the mean score, then the events with a score, below, inside and above the
    neutral band."""
    mean = _band(events, "mean sentiment")
    mean.math, mean.property = trends_pb2.TREND_MATH_AVERAGE, _SCORE
    return [
        mean,
        _band(
            events,
            "scored",
            analytics_pb2.PropertyFilter(property=_SCORE, operator=analytics_pb2.FILTER_OPERATOR_IS_SET),
        ),
        _band(
            events, "negative", _score_filter(analytics_pb2.FILTER_OPERATOR_LESS_THAN_OR_EQUAL, -NEUTRAL_BAND)
        ),
        _band(
            events,
            "neutral",
            _score_filter(analytics_pb2.FILTER_OPERATOR_GREATER_THAN, -NEUTRAL_BAND),
            _score_filter(analytics_pb2.FILTER_OPERATOR_LESS_THAN, NEUTRAL_BAND),
        ),
        _band(
            events,
            "positive",
            _score_filter(analytics_pb2.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL, NEUTRAL_BAND),
        ),
    ]


def _breakdown(by: str, limit: int) -> analytics_pb2.Breakdown:
    if by == "channel":
        return analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_CHANNEL, limit=limit)
    if by.startswith("segment:"):
        names = [
            n if n.startswith("segments/") else f"segments/{n}"
            for n in by.removeprefix("segment:").split(",")
        ]
        return analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_SEGMENT, segments=names)
    return analytics_pb2.Breakdown(
        dimension=analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY, property=by, limit=limit
    )


def _number(message: trends_pb2.TrendPoint | trends_pb2.TrendResult, field: str, digits: int) -> str:
    if not message.HasField(field):  # type: ignore[arg-type]
        return "—"
    value = float(getattr(message, field))
    return f"{value:,.0f}" if digits == 0 else f"{value:,.{digits}f}"


def _digits(math: str) -> int:
    return 0 if math in _COUNTING else 2


def _series_table(
    response: pb.QueryTrendsResponse, zone: ZoneInfo, period: str, math: str, title: str
) -> Table:
    """Periods down, one column per result (a series, or a series' breakdown value), then per formula's."""
    table = Table(title=title, title_justify="left")
    table.add_column(period)
    results = list(response.results)
    formulas = list(response.formula_results)
    several = len({r.series_index for r in results}) > 1 or bool(formulas)
    for r in results:
        value = value_name(r)
        name = r.label if not value else f"{r.label}: {value}" if several else value
        table.add_column(name, justify="right")
    for r in formulas:
        value = value_name(r)
        table.add_column(f"= {r.label}: {value}" if value else f"= {r.label}", justify="right")
    # A formula's numbers are ratios and differences: two decimals, whatever the series count.
    columns = [(r, _digits(math)) for r in results] + [(r, 2) for r in formulas]
    for i, point in enumerate(results[0].points if results else []):
        table.add_row(
            period_label(point, zone, period), *(_number(r.points[i], "value", d) for r, d in columns)
        )
    table.add_row("whole range", *(_number(r, "total", d) for r, d in columns), style="bold")
    return table


def _counts(result: trends_pb2.TrendResult | None, periods: int) -> list[float]:
    return [float(p.value) for p in result.points] if result is not None else [0.0] * periods


def _sentiment_table(
    title: str, series: dict[int, trends_pb2.TrendResult], zone: ZoneInfo, period: str
) -> Table:
    """Per period the scored events, mean score, band shares and net sentiment (the sentiment_request
    series by index), then the whole range."""
    table = Table(title=title, title_justify="left")
    for column in (period, "scored", "mean", "negative", "neutral", "positive", "net"):
        table.add_column(column, justify="left" if column == period else "right")
    mean, scored = series.get(0), series[1]
    bands = [series.get(i) for i in (2, 3, 4)]
    negatives, neutrals, positives = (_counts(b, len(scored.points)) for b in bands)
    for k, point in enumerate(scored.points):
        whole = point.value
        table.add_row(
            period_label(point, zone, period),
            f"{whole:,.0f}",
            _number(mean.points[k], "value", 3) if mean is not None else "—",
            share(negatives[k], whole),
            share(neutrals[k], whole),
            share(positives[k], whole),
            f"{(positives[k] - negatives[k]) / whole:+.0%}" if whole else "—",
        )
    totals = [float(b.total) if b is not None else 0.0 for b in bands]
    whole = scored.total
    table.add_row(
        "whole range",
        f"{whole:,.0f}",
        _number(mean, "total", 3) if mean is not None else "—",
        *(share(t, whole) for t in totals),
        f"{(totals[2] - totals[0]) / whole:+.0%}" if whole else "—",
        style="bold",
    )
    return table


def _sentiment_tables(response: pb.QueryTrendsResponse, zone: ZoneInfo, period: str) -> list[Table]:
    """One table per breakdown value that holds scored events."""
    by_value: dict[str, dict[int, trends_pb2.TrendResult]] = {}
    for r in response.results:
        by_value.setdefault(value_name(r), {})[r.series_index] = r
    return [
        _sentiment_table(
            f"Sentiment{f' on {value}' if value else ''} (neutral: |score| < {NEUTRAL_BAND})",
            series,
            zone,
            period,
        )
        for value, series in by_value.items()
        if 1 in series
    ]


def _request(
    names: list[str], math: str, property_: str, currency: str, sentiment: bool
) -> pb.QueryTrendsRequest:
    """The request's series: `--sentiment`'s, or one per event name (every event without one)."""
    request = pb.QueryTrendsRequest()
    if sentiment:
        request.series.extend(sentiment_request(names))
        return request
    for name in names or [""]:
        series = request.series.add(math=_MATHS[math], property=property_, currency_code=currency)
        if name:
            series.event.event_name = name
    return request


def _counting_insight(
    *, stickiness: bool, lifecycle: bool, reshaped: bool, sentiment: bool, formula: bool, by: str
) -> str:
    """The option of the person-counting insight asked for ('' for a trend); BadParameter for options that
    do not go together (`reshaped`: a math, formula or comparison was asked for)."""
    if formula and sentiment:
        raise typer.BadParameter("--sentiment computes its own shares", param_hint="--formula")
    if stickiness and lifecycle:
        raise typer.BadParameter("one of --stickiness and --lifecycle", param_hint="--lifecycle")
    counting = "--stickiness" if stickiness else "--lifecycle" if lifecycle else ""
    if counting and (reshaped or sentiment):
        raise typer.BadParameter(
            "counts active persons: no --math, --formula, --compare or --sentiment",
            param_hint=counting,
        )
    if lifecycle and by:
        raise typer.BadParameter("the activity lifecycle has no breakdown", param_hint="--by")
    return counting


def trends_command(
    events: Annotated[
        list[str] | None, typer.Argument(help="An event name per series; none: every event.")
    ] = None,
    *,
    math: Annotated[str, typer.Option(help=f"What to measure: {', '.join(_MATHS)}.")] = "total",
    property_: Annotated[
        str,
        typer.Option(
            "--property",
            help="The number the property maths read: revenue, sentiment_score, properties.<key>.",
        ),
    ] = "",
    currency: Annotated[str, typer.Option(help="The currency of revenue (with --property revenue).")] = "",
    period: Annotated[str, typer.Option(help="hour, day, week or month.")] = "week",
    since: Annotated[str, typer.Option(help="From this time: RFC 3339, or a duration like 90d.")] = "8w",
    until: Annotated[str, typer.Option(help="Before this time (default now): RFC 3339 or a duration.")] = "",
    tz: Annotated[str, typer.Option("--tz", help="The IANA time zone periods begin in.")] = "UTC",
    by: Annotated[
        str,
        typer.Option(
            help="Break down by channel, an event property path, person.<trait>, or segment:ID[,ID]."
        ),
    ] = "",
    limit: Annotated[int, typer.Option(min=0, max=100, help="Breakdown values kept before `other`.")] = 5,
    segment: Annotated[
        list[str] | None, typer.Option(help="Only current members of this segment (its id); repeat for more.")
    ] = None,
    formula: Annotated[
        list[str] | None,
        typer.Option(
            help="A line computed from the series, as 'B / A * 100' (A: the first EVENT); repeat for more."
        ),
    ] = None,
    sentiment: Annotated[
        bool, typer.Option("--sentiment", help="Measure the sentiment of the events that carry a score.")
    ] = False,
    stickiness: Annotated[
        bool,
        typer.Option("--stickiness", help="Count persons by how many periods they performed each EVENT in."),
    ] = False,
    lifecycle: Annotated[
        bool,
        typer.Option(
            "--lifecycle",
            help="Sort each period's persons of each EVENT as new, returning, resurrecting or dormant.",
        ),
    ] = False,
    persons: Annotated[
        str,
        typer.Option(
            help="With --lifecycle: list the first EVENT's persons of this status "
            "(new, returning, resurrecting, dormant) in the period --at."
        ),
    ] = "",
    at: Annotated[
        str, typer.Option(help="With --persons: the period as the table labels it (default the last).")
    ] = "",
    compare: Annotated[
        bool,
        typer.Option(
            "--compare", help="Also measure the previous range, as long and ending where this one starts."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The response as the API returns it (JSON).")
    ] = False,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print events measured per period: counts, persons, sums and percentiles, or sentiment."""
    names = [n.strip() for n in events or [] if n.strip()]
    if math not in _MATHS:
        raise typer.BadParameter(f"one of {', '.join(_MATHS)}", param_hint="--math")
    if period not in _PERIODS:
        raise typer.BadParameter("hour, day, week or month", param_hint="--period")
    # The zones the journeys service accepts (`right/UTC` or a name too long for a file name: none).
    zone = load_zone(tz) if tz in iana_zones() else None
    if zone is None:
        raise typer.BadParameter(f"{tz!r} is no IANA time zone", param_hint="--tz")
    request = _request(names, math, property_, currency, sentiment)
    request.period, request.time_zone = _PERIODS[period], tz
    counting = _counting_insight(
        stickiness=stickiness,
        lifecycle=lifecycle,
        reshaped=bool(formula or compare or math != "total"),
        sentiment=sentiment,
        formula=bool(formula),
        by=by,
    )
    request.formulas.extend(trends_pb2.TrendFormula(expression=f) for f in formula or [])
    request.compare_to_previous = compare
    start = parse_time(since)
    request.time_range.start.FromDatetime(start)
    if until:
        request.time_range.end.FromDatetime(parse_time(until))
    if by:
        request.breakdown.CopyFrom(_breakdown(by, limit))
    for segment_id in segment or []:
        request.population.segments.append(
            segment_id if segment_id.startswith("segments/") else f"segments/{segment_id}"
        )
    if persons and (counting != "--lifecycle" or persons not in STATUSES):
        raise typer.BadParameter(f"with --lifecycle, one of {', '.join(STATUSES)}", param_hint="--persons")
    if counting == "--lifecycle":
        show_lifecycle(
            request, zone, period, api_key, gateway=gateway, tls=tls, as_json=as_json, persons=persons, at=at
        )
    elif counting:
        show_stickiness(request, zone, period, api_key, gateway=gateway, tls=tls, as_json=as_json)
    if counting:
        return
    response: pb.QueryTrendsResponse = call(
        pb_grpc.JourneyServiceStub,
        lambda stub, auth: stub.QueryTrends(request, metadata=auth, timeout=60),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    if as_json:
        sys.stdout.write(json_format.MessageToJson(response, preserving_proto_field_name=True) + "\n")
        return
    end = to_datetime(response.end_time).astimezone(zone)
    out.print(f"From {start.astimezone(zone):%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({tz}); * still running")
    _print_tables(response, zone, period, math=math, property_=property_, sentiment=sentiment)
    if compare:
        before = to_datetime(response.previous_start_time).astimezone(zone)
        out.print(
            f"The previous range, from {before:%Y-%m-%d %H:%M} to {start.astimezone(zone):%Y-%m-%d %H:%M}:"
        )
        previous = pb.QueryTrendsResponse(
            results=response.previous_results, formula_results=response.previous_formula_results
        )
        _print_tables(previous, zone, period, math=math, property_=property_, sentiment=sentiment)


def _print_tables(
    response: pb.QueryTrendsResponse,
    zone: ZoneInfo,
    period: str,
    *,
    math: str,
    property_: str,
    sentiment: bool,
) -> None:
    if sentiment:
        for table in _sentiment_tables(response, zone, period):
            out.print(table)
        return
    what = f"{math} of {property_}" if property_ else math
    out.print(_series_table(response, zone, period, math, f"{what} per {period}"))
