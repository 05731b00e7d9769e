"""The demo's analytics steps, on the demo's customers and through the gateway: the purchase funnel by
channel and who dropped at checkout, the paths after a product view, weekly retention, customer value
with RFM and the lifetime summary, and weekly trends with the sentiment of what customers wrote and said
here; lifecycle stages, a segment kept current and one customer's features in demo_persons.

Every RPC error propagates and ends the demo: a step that cannot run is a failure, not something to skip."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
from rich.console import Console

from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2 as analytics
from wayline.journeys.v1 import funnel_pb2 as funnel_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.journeys.v1 import retention_pb2 as retention_pb
from wayline.journeys.v1 import trends_pb2
from wayline_cli import demo, demo_persons
from wayline_cli.channels import channel_name
from wayline_cli.demo_reading import TIMEOUT, Reader, days, duration
from wayline_cli.trends import sentiment_request
from wayline_cli.value import money, segment_name

__all__ = ["show_journeys"]

FUNNEL_STEPS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")


def show_journeys(channel: grpc.Channel, auth: tuple[tuple[str, str], ...], console: Console) -> None:
    began = time.monotonic()
    reader = Reader(journeys_grpc.JourneyServiceStub(channel), auth, console)
    reader.name_customers()
    _funnel(reader)
    _funnel_trend(reader)
    _paths(reader)
    _retention(reader)
    _customer_value(reader)
    _value_summary(reader)
    _trends(reader)
    _stickiness(reader)
    _activity_lifecycle(reader)
    _sentiment(reader)
    demo_persons.show_lifecycle(reader)
    demo_persons.show_segment(reader)
    demo_persons.show_unhappy_segment(reader)
    demo_persons.show_features(reader)
    console.print(f"journeys analytics: every answer above took {time.monotonic() - began:.1f} s in all")


def _series(value: analytics.BreakdownValue) -> str:
    return "other" if value.other else "(none)" if value.missing else value.value or "all"


def _purchase_steps() -> list[funnel_pb.FunnelStep]:
    return [funnel_pb.FunnelStep(event=analytics.EventMatcher(event_name=n)) for n in FUNNEL_STEPS]


def _funnel(reader: Reader) -> None:
    request = journeys_pb.QueryFunnelRequest(
        steps=_purchase_steps(),
        order=funnel_pb.FUNNEL_ORDER_ORDERED,
        conversion_window=days(30),
        breakdown=analytics.Breakdown(dimension=analytics.BREAKDOWN_DIMENSION_CHANNEL),
        breakdown_attribution=funnel_pb.FUNNEL_BREAKDOWN_ATTRIBUTION_FIRST_STEP,
    )
    series = reader.stub.QueryFunnel(request, metadata=reader.auth, timeout=TIMEOUT).series
    table = reader.table(
        "QueryFunnel",
        "ordered, 30-day window, by the channel of the product view; persons · conversion from the step "
        "before · median time from it",
        "step",
        *(_series(s.breakdown_value) for s in series),
    )
    for index, label in enumerate(FUNNEL_STEPS):
        cells = []
        for one in series:
            step = one.steps[index]
            timing = f" · {duration(step.median_time_to_convert)}" if step.count and index else ""
            cells.append(f"{step.count}" + (f" · {step.conversion_rate:.0%}{timing}" if index else ""))
        table.add_row(label, *cells)
    table.add_row(
        "median time to convert",
        *(duration(s.median_conversion_time) if s.steps[-1].count else "-" for s in series),
    )
    reader.console.print(table)
    dropped = reader.stub.ListFunnelPersons(
        journeys_pb.ListFunnelPersonsRequest(
            funnel=request,
            step_index=len(FUNNEL_STEPS) - 1,
            outcome=funnel_pb.FUNNEL_PERSONS_OUTCOME_DROPPED,
            page_size=20,
        ),
        metadata=reader.auth,
        timeout=TIMEOUT,
    )
    more = " (more on the next page)" if dropped.next_page_token else ""
    reader.console.print(
        "[bold]ListFunnelPersons[/bold]: dropped at checkout (started it, no order within 30 days): "
        f"{reader.names_of(dropped.person_ids)}{more}"
    )


def _funnel_trend(reader: Reader) -> None:
    """The purchase funnel's conversion week by week: the funnel of each week's product viewers."""
    request = journeys_pb.QueryFunnelRequest(
        steps=_purchase_steps(),
        conversion_window=days(7),
        time_range=event_pb2.TimeRange(start=to_timestamp(datetime.now(UTC) - timedelta(days=35))),
        trend=funnel_pb.FunnelTrend(period=retention_pb.RETENTION_PERIOD_WEEK),
    )
    (series,) = reader.stub.QueryFunnel(request, metadata=reader.auth, timeout=TIMEOUT).series
    table = reader.table(
        "QueryFunnel trend",
        "the same funnel within 7 days, week by week of the product view: persons who viewed, added, "
        "started checkout and ordered (* a week still converting)",
        "week of",
        "viewed",
        "added",
        "checkout",
        "ordered",
        "conversion",
    )
    for point in series.trend:
        week = to_datetime(point.period_start).strftime("%Y-%m-%d")
        rate = f"{point.conversion_rate:.0%}{'' if point.complete else '*'}"
        table.add_row(week, *(str(c) for c in point.step_counts), rate)
    reader.console.print(table)


def _paths(reader: Reader) -> None:
    query = journeys_pb.QueryPathsRequest(
        start_event=analytics.EventMatcher(event_name="Product Viewed"),
        depth=4,
        top_paths_limit=5,
        edge_limit=8,
    )
    series = reader.stub.QueryPaths(query, metadata=reader.auth, timeout=TIMEOUT).series
    for one in series:
        table = reader.table(
            "QueryPaths",
            f"from Product Viewed, depth 4: {one.path_count} paths of {one.person_count} persons, the "
            "most frequent",
            "path",
            "paths",
            "persons",
        )
        for path in one.top_paths:
            steps = " → ".join(f"{s.label} ({channel_name(s.channel)})" for s in path.steps)
            table.add_row(steps, str(path.count), str(path.person_count))
        reader.console.print(table)
        paged, pages, token = 0, 0, one.next_edges_page_token
        while token:  # the display cap hides nothing: ListPathEdges pages through the rest
            page = reader.stub.ListPathEdges(
                journeys_pb.ListPathEdgesRequest(
                    query=query, breakdown_value=one.breakdown_value, page_size=10, page_token=token
                ),
                metadata=reader.auth,
                timeout=TIMEOUT,
            )
            paged, pages, token = paged + len(page.edges), pages + 1, page.next_page_token
        reached = len(one.edges) + paged
        plural = "" if pages == 1 else "s"
        rest = (
            f"; [bold]ListPathEdges[/bold] paged the other {paged} in {pages} page{plural}" if pages else ""
        )
        reader.console.print(
            f"  Sankey: {one.edge_count} edges; QueryPaths returned the largest {len(one.edges)} (between "
            f"{len(one.nodes)} nodes){rest}: {'all' if reached == one.edge_count else 'NOT all'} reached"
        )


def _retention(reader: Reader) -> None:
    request = journeys_pb.QueryRetentionRequest(period=retention_pb.RETENTION_PERIOD_WEEK, period_count=4)
    for one in reader.stub.QueryRetention(request, metadata=reader.auth, timeout=TIMEOUT).series:
        table = reader.table(
            "QueryRetention",
            "weekly: persons first seen each week, and how many came back each week after (* the week "
            "is not over)",
            "week of",
            "persons",
            *(f"week {n}" for n in range(5)),
        )
        for cohort in one.cohorts:
            cells = [
                f"{v.retained_count} ({v.retained_rate:.0%}){'' if v.complete else '*'}"
                for v in cohort.values
            ]
            week = to_datetime(cohort.period_start).strftime("%Y-%m-%d")
            table.add_row(week, str(cohort.cohort_size), *cells)
        reader.console.print(table)


def _customer_value(reader: Reader) -> None:
    request = journeys_pb.GetCustomerValueRequest(currency_code=demo.CURRENCY, page_size=10)
    response = reader.stub.GetCustomerValue(request, metadata=reader.auth, timeout=TIMEOUT)
    table = reader.table(
        "GetCustomerValue",
        f"in bulk, in {demo.CURRENCY}: the {len(response.values)} most valuable of {response.total_size} "
        "purchasers, with their RFM scores and segment",
        "customer",
        "historic value",
        "orders",
        "last order",
        "R F M",
        "RFM segment",
    )
    for one in response.values:
        table.add_row(
            reader.name(one.person_id),
            money(one.historic_value),
            str(one.purchase_count),
            f"{one.recency_days} day{'' if one.recency_days == 1 else 's'} ago",
            f"{one.recency_score} {one.frequency_score} {one.monetary_score}",
            segment_name(one.rfm_segment),
        )
    reader.console.print(table)
    table = reader.table(
        "GetCustomerValue",
        "the same customers' lifetime summary, the input of the BG/NBD and Gamma-Gamma models: "
        "frequency = repeat purchase days, recency = days from the first purchase to the last, T = from the "
        "first to now, monetary = the mean value of the repeat days",
        "customer",
        "frequency",
        "recency",
        "T",
        "monetary value",
    )
    for one in response.values:
        life = one.lifetime_summary
        monetary = money(life.monetary_value) if life.frequency else "-"
        table.add_row(
            reader.name(one.person_id), str(life.frequency), str(life.recency), str(life.t), monetary
        )
    reader.console.print(table)


def _value_summary(reader: Reader) -> None:
    request = journeys_pb.GetCustomerValueSummaryRequest(currency_code=demo.CURRENCY)
    summary = reader.stub.GetCustomerValueSummary(request, metadata=reader.auth, timeout=TIMEOUT)
    table = reader.table(
        "GetCustomerValueSummary",
        f"every purchaser in {demo.CURRENCY} by RFM segment, in one call: {summary.purchasers} purchasers, "
        f"{money(summary.historic_value)}; the median purchaser "
        f"{money(summary.value_quantiles[2].value) if summary.value_quantiles else '-'}",
        "RFM segment",
        "customers",
        "historic value",
        "orders",
        "days since the last",
    )
    for segment in summary.segments:
        table.add_row(
            segment_name(segment.segment),
            str(segment.persons),
            money(segment.historic_value),
            str(segment.purchase_count),
            f"{segment.average_recency_days:.0f}",
        )
    reader.console.print(table)


def _trend_request(series: list[trends_pb2.TrendSeries]) -> journeys_pb.QueryTrendsRequest:
    """The last five weeks (Monday-based, UTC), as the demo's events span them."""
    start = datetime.now(UTC) - timedelta(weeks=5)
    request = journeys_pb.QueryTrendsRequest(series=series, period=retention_pb.RETENTION_PERIOD_WEEK)
    request.time_range.start.CopyFrom(to_timestamp(start))
    return request


def _value(point: trends_pb2.TrendPoint | trends_pb2.TrendResult, name: str, text: str) -> str:
    return text.format(getattr(point, name)) if point.HasField(name) else "-"  # type: ignore[arg-type]


def _trends(reader: Reader) -> None:
    request = _trend_request(
        [
            trends_pb2.TrendSeries(label="active persons", math=trends_pb2.TREND_MATH_UNIQUE_PERSONS),
            trends_pb2.TrendSeries(  # every event with revenue in the currency: orders on every channel
                label="revenue",
                math=trends_pb2.TREND_MATH_SUM,
                property="revenue",
                currency_code=demo.CURRENCY,
            ),
            trends_pb2.TrendSeries(
                label="median order",
                math=trends_pb2.TREND_MATH_MEDIAN,
                property="revenue",
                currency_code=demo.CURRENCY,
            ),
        ]
    )
    # A formula over the series: the revenue per active person (B / A), a week's and the five weeks'.
    request.formulas.append(trends_pb2.TrendFormula(label="revenue per person", expression="B / A"))
    response = reader.stub.QueryTrends(request, metadata=reader.auth, timeout=TIMEOUT)
    active, revenue, median = response.results
    (per_person,) = response.formula_results
    table = reader.table(
        "QueryTrends",
        "week by week: persons active on any channel, and the orders of every channel (web, app, store): "
        "revenue, count and median, and the formula B / A (* the week is not over)",
        "week of",
        "active persons",
        f"revenue ({demo.CURRENCY})",
        "orders",
        "median order",
        "revenue per person",
    )
    for k, point in enumerate(active.points):
        week = to_datetime(point.period_start).strftime("%Y-%m-%d") + ("" if point.complete else "*")
        table.add_row(
            week,
            _value(point, "value", "{:.0f}"),
            _value(revenue.points[k], "value", "{:,.2f}"),
            str(revenue.points[k].event_count),
            _value(median.points[k], "value", "{:,.2f}"),
            _value(per_person.points[k], "value", "{:,.2f}"),
        )
    table.add_row(
        "five weeks",
        _value(active, "total", "{:.0f}"),
        _value(revenue, "total", "{:,.2f}"),
        str(revenue.event_count),
        _value(median, "total", "{:,.2f}"),
        _value(per_person, "total", "{:,.2f}"),
    )
    reader.console.print(table)


def _stickiness(reader: Reader) -> None:
    """How habitual ordering is: of the persons who ordered in the trend's weeks, how many did in 1, 2, …"""
    weeks = _trend_request([])
    request = journeys_pb.QueryStickinessRequest(
        # Every event with revenue in the currency: the orders of every channel.
        series=[trends_pb2.TrendSeries(label="ordered", currency_code=demo.CURRENCY)],
        time_range=weeks.time_range,
        period=weeks.period,
    )
    response = reader.stub.QueryStickiness(request, metadata=reader.auth, timeout=TIMEOUT)
    (ordered,) = response.results
    table = reader.table(
        "QueryStickiness",
        f"how habitual ordering is: of the {ordered.total_persons} persons who ordered in the "
        f"{response.period_count} weeks above, how many did so in 1, 2, … of them",
        "weeks with an order",
        "persons",
        "share",
    )
    for k, persons in enumerate(ordered.persons):
        share = f"{persons / ordered.total_persons:.0%}" if ordered.total_persons else "-"
        table.add_row(str(k + 1), str(persons), share)
    reader.console.print(table)


def _activity_lifecycle(reader: Reader) -> None:
    """Each week's buyers by how their ordering changed: new, returning, resurrecting and dormant."""
    weeks = _trend_request([])
    request = journeys_pb.QueryActivityLifecycleRequest(
        series=[trends_pb2.TrendSeries(label="ordered", currency_code=demo.CURRENCY)],
        time_range=weeks.time_range,
        period=weeks.period,
    )
    response = reader.stub.QueryActivityLifecycle(request, metadata=reader.auth, timeout=TIMEOUT)
    (ordered,) = response.results
    table = reader.table(
        "QueryActivityLifecycle",
        "each week's buyers: new (first order ever), returning (ordered the week before too), "
        "resurrecting (ordered before that), and dormant (ordered the week before, not this one)",
        "week of",
        "new",
        "returning",
        "resurrecting",
        "dormant",
    )
    for p in ordered.points:
        week = f"{to_datetime(p.period_start):%Y-%m-%d}{'' if p.complete else ' *'}"
        counts = (p.new_persons, p.returning_persons, p.resurrecting_persons, -p.dormant_persons)
        table.add_row(week, *(str(c) for c in counts))
    reader.console.print(table)
    # Who lapsed: the persons behind the week with the most dormant buyers, a win-back audience.
    lapsed = max(ordered.points, key=lambda p: p.dormant_persons)
    if not lapsed.dormant_persons:
        return
    request.time_range.end.CopyFrom(response.end_time)  # the periods stay put while paging
    listing = journeys_pb.ListActivityLifecyclePersonsRequest(
        lifecycle=request, period_start=lapsed.period_start, status=trends_pb2.ACTIVITY_STATUS_DORMANT
    )
    found = reader.stub.ListActivityLifecyclePersons(listing, metadata=reader.auth, timeout=TIMEOUT)
    week = f"{to_datetime(lapsed.period_start):%Y-%m-%d}"
    reader.console.print(
        f"[bold]ListActivityLifecyclePersons[/bold]: the {len(found.person_ids)} buyers dormant in the week "
        f"of {week} (a win-back audience): {', '.join(found.person_ids)}"
    )


def _sentiment(reader: Reader) -> None:
    """What customers felt, by channel: ingest scored each chat message's and call's text (VADER)."""
    request = _trend_request(sentiment_request([]))
    request.breakdown.CopyFrom(analytics.Breakdown(dimension=analytics.BREAKDOWN_DIMENSION_CHANNEL))
    response = reader.stub.QueryTrends(request, metadata=reader.auth, timeout=TIMEOUT)
    series: dict[str, dict[int, trends_pb2.TrendResult]] = {}
    for result in response.results:
        series.setdefault(_series(result.breakdown_value), {})[result.series_index] = result
    table = reader.table(
        "QueryTrends",
        "sentiment of what customers wrote and said, by channel, over five weeks (scored by ingest; "
        "neutral when |score| < 0.05)",
        "channel",
        "texts",
        "mean score",
        "negative",
        "neutral",
        "positive",
    )
    for channel_value, found in series.items():
        scored = found.get(1)
        if scored is None or not scored.event_count:
            continue
        shares = [
            f"{found[i].event_count / scored.event_count:.0%}" if i in found else "0%" for i in (2, 3, 4)
        ]
        table.add_row(channel_value, str(scored.event_count), _value(found[0], "total", "{:+.2f}"), *shares)
    reader.console.print(table)
