"""`wayline trends --stickiness` and `--lifecycle`: the trend's series, range, period, zone, breakdown and
population asked of QueryStickiness (persons by how many periods they were active in) or of
QueryActivityLifecycle (each period's persons as new, returning, resurrecting or dormant), printed."""

from __future__ import annotations

import sys
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.table import Table

from wayline.common.timestamps import to_datetime
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline.journeys.v1 import trends_pb2
from wayline_cli.gateway import call, out, pages
from wayline_cli.trend_format import period_label, share, value_name

__all__ = ["STATUSES", "counting_request", "lifecycle_table", "show_lifecycle", "show_stickiness"]

Counting = TypeVar("Counting", pb.QueryStickinessRequest, pb.QueryActivityLifecycleRequest)


def counting_request(kind: type[Counting], trend: pb.QueryTrendsRequest) -> Counting:
    """A request of `kind` holding the trend's fields of the same names (a lifecycle has no breakdown)."""
    request = kind(series=trend.series, period=trend.period, time_zone=trend.time_zone)
    if trend.HasField("time_range"):
        request.time_range.CopyFrom(trend.time_range)
    if trend.HasField("population"):
        request.population.CopyFrom(trend.population)
    if isinstance(request, pb.QueryStickinessRequest) and trend.HasField("breakdown"):
        request.breakdown.CopyFrom(trend.breakdown)
    return request


def _answer(method: str, request: Message, api_key: str, *, gateway: str, tls: bool, as_json: bool) -> Any:
    """JourneyService's answer to `request` through the gateway (a failure is the CLI's); with `as_json`
    written out as the API returns it, and None."""
    response = call(
        pb_grpc.JourneyServiceStub,
        lambda stub, auth: getattr(stub, method)(request, metadata=auth, timeout=60),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    if not as_json:
        return response
    sys.stdout.write(json_format.MessageToJson(response, preserving_proto_field_name=True) + "\n")
    return None


def _span(request: Counting, response: Any, zone: ZoneInfo) -> str:
    start = to_datetime(request.time_range.start).astimezone(zone)
    end = to_datetime(response.end_time).astimezone(zone)
    return f"From {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({zone.key})"


def show_stickiness(
    trend: pb.QueryTrendsRequest,
    zone: ZoneInfo,
    period: str,
    api_key: str,
    *,
    gateway: str,
    tls: bool,
    as_json: bool,
) -> None:
    """Persons per number of active periods, a column per series (and breakdown value)."""
    request = counting_request(pb.QueryStickinessRequest, trend)
    response: pb.QueryStickinessResponse | None = _answer(
        "QueryStickiness", request, api_key, gateway=gateway, tls=tls, as_json=as_json
    )
    if response is None:
        return
    out.print(f"{_span(request, response, zone)}: {response.period_count} {period}s")
    table = Table(title=f"Persons by the {period}s they were active in", title_justify="left")
    table.add_column(f"{period}s")
    results = list(response.results)
    several = len({r.series_index for r in results}) > 1
    for r in results:
        value = value_name(r)
        table.add_column(
            r.label if not value else f"{r.label}: {value}" if several else value, justify="right"
        )
    for k in range(response.period_count):
        table.add_row(
            str(k + 1), *(f"{r.persons[k]:,} ({share(r.persons[k], r.total_persons)})" for r in results)
        )
    table.add_row("persons", *(f"{r.total_persons:,}" for r in results), style="bold")
    out.print(table)


def lifecycle_table(result: trends_pb2.ActivityLifecycleResult, zone: ZoneInfo, period: str) -> Table:
    """Per period: new, returning, resurrecting and dormant persons (dormant below zero, as charts draw
    them), the active ones, and the quick ratio (new and resurrecting per dormant: above 1, the active base
    grows)."""
    table = Table(title=f"{result.label}: persons per {period} by activity", title_justify="left")
    for column in (period, "new", "returning", "resurrecting", "dormant", "active", "quick ratio"):
        table.add_column(column, justify="left" if column == period else "right")
    for p in result.points:
        active = p.new_persons + p.returning_persons + p.resurrecting_persons
        gained = p.new_persons + p.resurrecting_persons
        table.add_row(
            period_label(p, zone, period),
            f"{p.new_persons:,}",
            f"{p.returning_persons:,}",
            f"{p.resurrecting_persons:,}",
            f"-{p.dormant_persons:,}" if p.dormant_persons else "0",
            f"{active:,}",
            f"{gained / p.dormant_persons:.2f}" if p.dormant_persons else "—",
        )
    return table


STATUSES = {
    "new": trends_pb2.ACTIVITY_STATUS_NEW,
    "returning": trends_pb2.ACTIVITY_STATUS_RETURNING,
    "resurrecting": trends_pb2.ACTIVITY_STATUS_RESURRECTING,
    "dormant": trends_pb2.ACTIVITY_STATUS_DORMANT,
}


def show_lifecycle(
    trend: pb.QueryTrendsRequest,
    zone: ZoneInfo,
    period: str,
    api_key: str,
    *,
    gateway: str,
    tls: bool,
    as_json: bool,
    persons: str = "",
    at: str = "",
) -> None:
    """A table per series: each period's persons by how their activity changed; with `persons` (a status),
    the ids of the first series' persons of that status in the period labelled `at` (default the last)."""
    request = counting_request(pb.QueryActivityLifecycleRequest, trend)
    response: pb.QueryActivityLifecycleResponse | None = _answer(
        "QueryActivityLifecycle", request, api_key, gateway=gateway, tls=tls, as_json=as_json and not persons
    )
    if response is None:
        return
    if persons:
        # The range measured, end included, so that the periods stay put while paging.
        request.time_range.end.CopyFrom(response.end_time)
        _list_persons(
            request,
            response.results[0],
            zone=zone,
            period=period,
            status=persons,
            at=at,
            api_key=api_key,
            gateway=gateway,
            tls=tls,
        )
        return
    out.print(f"{_span(request, response, zone)}; * still running")
    for result in response.results:
        out.print(lifecycle_table(result, zone, period))


def _list_persons(
    lifecycle: pb.QueryActivityLifecycleRequest,
    result: trends_pb2.ActivityLifecycleResult,
    *,
    zone: ZoneInfo,
    period: str,
    status: str,
    at: str,
    api_key: str,
    gateway: str,
    tls: bool,
) -> None:
    """Every id of the persons of `status` in the period labelled `at`, one per line under a heading."""
    labels = [period_label(p, zone, period).removesuffix(" *") for p in result.points]
    chosen = labels.index(at) if at in labels else len(labels) - 1 if not at else None
    if chosen is None or not labels:
        raise typer.BadParameter(
            f"a {period} of the range, as the table labels it: {', '.join(labels)}", param_hint="--at"
        )
    request = pb.ListActivityLifecyclePersonsRequest(
        lifecycle=lifecycle,
        period_start=result.points[chosen].period_start,
        status=STATUSES[status],
        page_size=1_000,
    )
    found = call(
        pb_grpc.JourneyServiceStub,
        lambda stub, auth: list(
            pages(
                lambda r: stub.ListActivityLifecyclePersons(r, metadata=auth, timeout=60),
                request,
                lambda page: page.person_ids,
            )
        ),
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    out.print(
        f"{status.capitalize()} persons of {result.label}, the {period} of {labels[chosen]}: {len(found):,}"
    )
    for person in found:
        out.print(person, highlight=False)
