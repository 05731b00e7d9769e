"""QueryTrends over gRPC against the plain-Python reference: every math, periods in a time zone with a DST
change, breakdowns with `other` (persons and percentiles of the merged events, not sums of the values'),
populations, segments, a merge, tenants apart, and validation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import grpc
import pytest

from tests.breadth import seeds
from tests.journeys.analytics_requests import set_breakdown, set_plan_population, set_time_range
from tests.journeys.conftest import Journeys, field_violations, override
from tests.journeys.segments_support import (
    assert_segments_overlap,
    built_segments,
    count,
    delete_all_segments,
)
from tests.journeys.trends_reference import (
    Measured,
    Series,
    TEv,
    TQuery,
    hour_log,
    reference_trend,
    to_pb,
    trend_log,
)
from tests.rpc_errors import violations
from wayline.common.timestamps import to_datetime, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, retention_pb2, trends_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

START = datetime(2026, 3, 2, tzinfo=UTC)  # the logs span Europe/Paris' change to summer time (29 March)
END = datetime(2026, 4, 20, tzinfo=UTC)
PERIODS = {
    "hour": retention_pb2.RETENTION_PERIOD_HOUR,
    "day": retention_pb2.RETENTION_PERIOD_DAY,
    "week": retention_pb2.RETENTION_PERIOD_WEEK,
    "month": retention_pb2.RETENTION_PERIOD_MONTH,
}

EVERY_MATH = (
    Series(),
    Series(("Purchased",), "unique_persons"),
    Series(("Purchased", "Signed Up"), "events_per_person"),
    Series(("Purchased",), "sum", "revenue", "EUR"),
    Series(("Call Ended", "Chat Message"), "average", "sentiment_score"),
    Series(("Purchased",), "minimum", "revenue", "EUR"),
    Series(("Purchased",), "maximum", "revenue", "USD"),
    Series(("Purchased",), "median", "revenue", "USD"),
    Series(("Purchased",), "p90", "properties.items"),
    Series((), "p99", "sentiment_score"),
)


def series_message(s: Series) -> trends_pb2.TrendSeries:
    found = trends_pb2.TrendSeries(
        math=trends_pb2.TrendMath.Value(f"TREND_MATH_{s.math.upper()}"),
        property=s.property,
        currency_code=s.currency,
    )
    channels = [event_pb2.Channel.Value(f"CHANNEL_{c.upper()}") for c in s.channels]
    if len(s.names) > 1:
        found.any_of.extend(analytics_pb2.EventMatcher(event_name=n, channels=channels) for n in s.names)
    elif s.names or channels:
        found.event.CopyFrom(analytics_pb2.EventMatcher(event_name="".join(s.names), channels=channels))
    return found


def request_of(q: TQuery) -> pb.QueryTrendsRequest:
    request = pb.QueryTrendsRequest(
        series=[series_message(s) for s in q.series], period=PERIODS[q.period], time_zone=q.zone
    )
    set_time_range(request.time_range, q.start, q.end)
    set_breakdown(request.breakdown, q.breakdown, q.limit, [name for name, _ in q.segments])
    set_plan_population(request.population, q.population_plan)
    return request


def actual(response: pb.QueryTrendsResponse) -> dict[tuple[int, str, bool, bool], Measured]:
    def value(message: trends_pb2.TrendPoint | trends_pb2.TrendResult, name: str) -> float | None:
        return getattr(message, name) if message.HasField(name) else None  # type: ignore[arg-type]

    return {
        (
            r.series_index,
            r.breakdown_value.value,
            r.breakdown_value.other,
            r.breakdown_value.missing,
        ): Measured(
            tuple((to_datetime(p.period_start), value(p, "value"), p.event_count) for p in r.points),
            value(r, "total"),
            r.event_count,
        )
        for r in response.results
    }


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(
    got: dict[tuple[int, str, bool, bool], Measured], wanted: dict[tuple[int, str, bool, bool], Measured]
) -> None:
    assert set(got) == set(wanted)
    for key, w in wanted.items():
        g = got[key]
        assert g.events == w.events, key
        assert _close(g.total, w.total), (key, g.total, w.total)
        assert [(p[0], p[2]) for p in g.points] == [(p[0], p[2]) for p in w.points], key
        for gp, wp in zip(g.points, w.points, strict=True):
            assert _close(gp[1], wp[1]), (key, gp, wp)


def assert_matches(journeys: Journeys, log: list[TEv], q: TQuery) -> pb.QueryTrendsResponse:
    response: pb.QueryTrendsResponse = journeys.stub.QueryTrends(
        request_of(q), metadata=journeys.metadata, timeout=30
    )
    assert_same(actual(response), reference_trend(log, q))
    labels = {r.series_index: r.label for r in response.results}
    for index, s in enumerate(q.series):
        if index in labels:
            assert labels[index] == (s.names[0] if s.names else "all events")
    for index in range(len(q.series)):
        ranked = [r for r in response.results if r.series_index == index]
        assert [r.breakdown_value.other for r in ranked] == sorted(r.breakdown_value.other for r in ranked)
    assert to_datetime(response.end_time) == q.end
    return response


@pytest.mark.parametrize("seed", seeds(21, 22))
def test_query_trends_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = trend_log(seed, START)
    journeys.write(*(to_pb(e) for e in log))
    variants = [
        TQuery(EVERY_MATH, START, END, "week", "Europe/Paris"),
        TQuery(EVERY_MATH, START + timedelta(hours=5), END, "day", "America/New_York"),
        TQuery(EVERY_MATH[:5], START - timedelta(days=20), END + timedelta(days=30), "month", "Asia/Tokyo"),
        TQuery(EVERY_MATH, START, END, "week", "Europe/Paris", breakdown="channel", limit=2),
        TQuery(EVERY_MATH, START, END, "day", breakdown="properties.source", limit=2),
        TQuery(EVERY_MATH, START, END, "week", breakdown="person.plan", population_plan="pro"),
        TQuery(
            (
                Series((), "unique_persons", channels=("web", "email")),
                Series(("Purchased",), channels=("web",)),
            ),
            START,
            END,
            "week",
            "Europe/Paris",
        ),
    ]
    for q in variants:
        wanted = reference_trend(log, q)
        assert any(m.events for m in wanted.values()), q
        assert_matches(journeys, log, q)
    other = reference_trend(log, variants[3])
    assert any(key[2] for key in other), "the channel breakdown has an `other` result"


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        # Summer time ends in Paris on 25 October 2026: 02:00-03:00 runs twice, two periods of its own.
        ("Europe/Paris", datetime(2026, 10, 24, 20, 17, tzinfo=UTC)),
        # Summer time starts in New York on 8 March 2026: 02:00-03:00 never runs.
        ("America/New_York", datetime(2026, 3, 7, 18, 0, tzinfo=UTC)),
        ("Asia/Kolkata", datetime(2026, 6, 1, 0, 0, tzinfo=UTC)),  # hours start at :30 UTC
        ("UTC", datetime(1969, 12, 30, 22, 0, tzinfo=UTC)),  # across 1970, where toStartOfHour stops
        # Lord Howe's clocks move by half an hour: on 4 October 2026 from 02:00 to 02:30, so 01:00's hour
        # lasts until 03:00 (90 minutes); on 5 April from 02:00 back to 01:30, so 01:00's lasts until 02:00.
        ("Australia/Lord_Howe", datetime(2026, 10, 2, 20, 0, tzinfo=UTC)),
        ("Australia/Lord_Howe", datetime(2026, 4, 3, 20, 0, tzinfo=UTC)),
    ],
)
def test_query_trends_counts_hours_of_the_local_clock(journeys: Journeys, zone: str, start: datetime) -> None:
    log = hour_log(25, start)
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery(EVERY_MATH[:5], start, start + timedelta(hours=72), "hour", zone, breakdown="channel", limit=2)
    got = actual(assert_matches(journeys, log, q))
    points = next(iter(got.values())).points  # every result has the same periods
    local = [p[0].astimezone(ZoneInfo(zone)) for p in points]
    assert all(t.minute == 0 and t.second == 0 for t in local)
    shown = [t.strftime("%m-%d %H") for t in local]
    lengths = {shown[i]: points[i + 1][0] - points[i][0] for i in range(len(points) - 1)}
    if zone == "Australia/Lord_Howe":
        assert len(points) == 72  # the range's hours but the one that lasts 90 minutes
        assert lengths["10-04 01" if "10-04 01" in lengths else "04-05 01"] == timedelta(minutes=90)
        assert "10-04 02" not in shown
        assert shown.count("04-05 01") <= 1
        return
    whole = start.astimezone(ZoneInfo(zone)).minute == 0
    assert len(points) == (72 if whole else 73)  # the range's hours, and the one it starts in
    if zone == "Europe/Paris":
        assert shown.count("10-25 02") == 2  # the hour the clock runs twice: two periods
    if zone == "America/New_York":
        assert "03-08 02" not in shown  # the hour the clock skips: none


def test_query_trends_counts_weekly_and_monthly_active_persons(journeys: Journeys) -> None:
    """For each day the persons active that day or in the 6 (29) days before, events before the range
    included; the whole range's value is the last day's."""
    log = trend_log(26, START)
    journeys.write(*(to_pb(e) for e in log))
    rolling = (
        Series((), "weekly_active_persons"),
        Series(("Purchased",), "monthly_active_persons"),
        Series(("Purchased",), "sum", "revenue", "EUR"),
    )
    for q in (
        TQuery(rolling, START + timedelta(days=20), END, "day", "Europe/Paris"),
        TQuery(rolling, START + timedelta(days=10), END, "day", "UTC", breakdown="channel", limit=2),
        TQuery(
            rolling, START + timedelta(days=10), END, "day", breakdown="person.plan", population_plan="pro"
        ),
    ):
        wanted = reference_trend(log, q)
        looked_back = wanted[next(k for k in wanted if k[0] == 1)].points[0][1]
        assert (looked_back or 0) > 0, q  # the first day counts purchases before the range
        assert_matches(journeys, log, q)


def test_rolling_persons_count_per_day_only(journeys: Journeys) -> None:
    request = request_of(TQuery((Series((), "weekly_active_persons"),), START, END, "week"))
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryTrends(request, metadata=journeys.metadata, timeout=10)
    assert violations(caught.value) == {
        "series[0].math": "WEEKLY_ACTIVE_PERSONS counts per day: set period to RETENTION_PERIOD_DAY"
    }


def test_hours_are_for_trends_only(journeys: Journeys) -> None:
    hourly = retention_pb2.RETENTION_PERIOD_HOUR
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryRetention(
            pb.QueryRetentionRequest(period=hourly), metadata=journeys.metadata, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"period": "hours are for QueryTrends only: use days, weeks or months"}


def test_query_trends_measures_other_from_its_events(journeys: Journeys) -> None:
    """Values beyond the limit are measured together: a person in two of them counts once in `other`, and
    its median is of all their values, not a sum of each value's."""
    at = datetime(2026, 3, 3, 10, tzinfo=UTC)
    log = [
        TEv(
            "p-a",
            at,
            "00000000-0000-0000-0000-0000000000a1",
            "track",
            "Purchased",
            "web",
            {},
            (Decimal("10"), "EUR"),
        ),
        TEv(
            "p-a",
            at,
            "00000000-0000-0000-0000-0000000000a2",
            "track",
            "Purchased",
            "web",
            {},
            (Decimal("20"), "EUR"),
        ),
        TEv(
            "p-a",
            at,
            "00000000-0000-0000-0000-0000000000a6",
            "track",
            "Purchased",
            "web",
            {},
            (Decimal("25"), "EUR"),
        ),
        TEv(
            "p-a",
            at,
            "00000000-0000-0000-0000-0000000000a3",
            "track",
            "Purchased",
            "email",
            {},
            (Decimal("30"), "EUR"),
        ),
        TEv(
            "p-a",
            at,
            "00000000-0000-0000-0000-0000000000a4",
            "track",
            "Purchased",
            "sms",
            {},
            (Decimal("40"), "EUR"),
        ),
        TEv(
            "p-b",
            at,
            "00000000-0000-0000-0000-0000000000a5",
            "track",
            "Purchased",
            "sms",
            {},
            (Decimal("50"), "EUR"),
        ),
    ]
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery(
        (Series(("Purchased",), "unique_persons"), Series(("Purchased",), "median", "revenue", "EUR")),
        START,
        END,
        breakdown="channel",
        limit=1,
    )
    got = actual(assert_matches(journeys, log, q))
    assert got[(0, "web", False, False)].total == 1
    assert got[(0, "", True, False)].total == 2  # p-a (email, sms) and p-b (sms): not 1 + 2
    assert got[(1, "", True, False)].total == 40  # the median of 30, 40, 50


def test_query_trends_breaks_down_by_segment_membership(journeys: Journeys) -> None:
    """An event counts under each segment its person is in, and under `missing` when in none; every listed
    segment keeps its result whatever the limit."""
    log = trend_log(23, START)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = built_segments(
            journeys, ("bought-twice", count("Purchased", 2)), ("called", count("Call Ended"))
        )
        assert_segments_overlap(segments, {e.person for e in log})
        q = TQuery(
            EVERY_MATH, START, END, "week", "Europe/Paris", breakdown="segment", segments=segments, limit=1
        )
        assert "segments/called" in {key[1] for key in reference_trend(log, q)}, q
        assert_matches(journeys, log, q)
    finally:
        delete_all_segments(journeys)


def test_query_trends_follows_a_merge(journeys: Journeys) -> None:
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    log = [
        TEv(
            "m-first",
            at,
            "00000000-0000-0000-0000-0000000000b1",
            "track",
            "Purchased",
            "web",
            {},
            (Decimal("5"), "EUR"),
        ),
        TEv(
            "m-second",
            at + timedelta(days=1),
            "00000000-0000-0000-0000-0000000000b2",
            "track",
            "Purchased",
            "email",
        ),
    ]
    journeys.write(*(to_pb(e) for e in log))
    q = TQuery((Series(("Purchased",), "unique_persons"),), START, END, "month")
    before = actual(assert_matches(journeys, log, q))
    assert before[(0, "", False, False)].total == 2
    journeys.apply(override("m-second", "m-first", 1))
    after = actual(assert_matches(journeys, [replace(e, person="m-first") for e in log], q))
    assert after[(0, "", False, False)].total == 1


def test_query_trends_keeps_tenants_apart(journeys: Journeys) -> None:
    log = trend_log(24, START, persons=5)
    journeys.write(*(to_pb(e) for e in log))
    other = journeys.for_tenant(f"{journeys.tenant}-other")
    q = TQuery(EVERY_MATH[:4], START, END)
    response = other.stub.QueryTrends(request_of(q), metadata=other.metadata, timeout=30)
    assert [r.event_count for r in response.results] == [0, 0, 0, 0]
    assert all(p.event_count == 0 and p.value == 0 for r in response.results for p in r.points)
    assert reference_trend(log, q)[(0, "", False, False)].events > 0
    assert_matches(journeys, log, q)


def test_query_trends_without_events_has_one_result_per_series(journeys: Journeys) -> None:
    q = TQuery(
        (Series(), Series(("Purchased",), "average", "revenue", "EUR")),
        START,
        START + timedelta(days=3),
        "day",
    )
    response = journeys.stub.QueryTrends(request_of(q), metadata=journeys.metadata, timeout=10)
    assert [(r.series_index, r.label, r.event_count, r.HasField("total")) for r in response.results] == [
        (0, "all events", 0, True),
        (1, "Purchased", 0, False),  # no value to average: unset, not 0
    ]
    assert [(p.HasField("value"), p.value) for p in response.results[0].points] == [(True, 0.0)] * 3
    assert not any(p.HasField("value") for p in response.results[1].points)


def test_query_trends_marks_the_running_period(journeys: Journeys) -> None:
    now = datetime.now(UTC)
    journeys.write(
        to_pb(
            TEv(
                "r-1",
                now - timedelta(minutes=1),
                "00000000-0000-0000-0000-0000000000c1",
                "track",
                "Signed Up",
                "web",
            )
        )
    )
    request = pb.QueryTrendsRequest(
        series=[trends_pb2.TrendSeries()], period=retention_pb2.RETENTION_PERIOD_DAY
    )
    request.time_range.start.FromDatetime(now - timedelta(days=2))
    response = journeys.stub.QueryTrends(request, metadata=journeys.metadata, timeout=10)
    points = response.results[0].points
    if to_datetime(points[-1].period_start).date() == datetime.now(UTC).date():  # (unless the day ended)
        assert [p.complete for p in points] == [True, True, False]
        assert points[-1].event_count == 1
    assert to_datetime(response.end_time) >= now


def _series(**fields: object) -> trends_pb2.TrendSeries:
    return trends_pb2.TrendSeries(**fields)  # type: ignore[arg-type]


_RANGE = event_pb2.TimeRange(start=to_timestamp(START), end=to_timestamp(END))


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.QueryTrendsRequest(time_range=_RANGE), {"series"}),
        (pb.QueryTrendsRequest(series=[_series()] * 11, time_range=_RANGE), {"series"}),
        (
            pb.QueryTrendsRequest(
                series=[
                    _series(math=trends_pb2.TREND_MATH_SUM),
                    _series(math=trends_pb2.TREND_MATH_TOTAL, property="revenue"),
                    _series(math=trends_pb2.TREND_MATH_AVERAGE, property="name"),
                    _series(math=trends_pb2.TREND_MATH_MEDIAN, property="revenue"),
                    _series(math=trends_pb2.TREND_MATH_MAXIMUM, property="person.age"),
                    _series(math=42),
                    _series(currency_code="eur"),
                    _series(any_of=[analytics_pb2.EventMatcher(event_name="x")] * 11),
                    _series(event=analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_UNSPECIFIED])),
                ],
                time_range=_RANGE,
            ),
            {
                "series[0].property",
                "series[1].property",
                "series[2].property",
                "series[3].currency_code",
                "series[4].property",
                "series[5].math",
                "series[6].currency_code",
                "series[7].any_of",
                "series[8].event.channels",
            },
        ),
        (pb.QueryTrendsRequest(series=[_series()]), {"time_range.start"}),
        (
            pb.QueryTrendsRequest(
                series=[_series()],
                time_range=event_pb2.TimeRange(start=to_timestamp(datetime.now(UTC) + timedelta(days=1))),
            ),
            {"time_range.start"},
        ),
        (
            pb.QueryTrendsRequest(
                series=[_series()],
                period=retention_pb2.RETENTION_PERIOD_DAY,
                time_range=event_pb2.TimeRange(
                    start=to_timestamp(START), end=to_timestamp(START + timedelta(days=401))
                ),
            ),
            {"time_range"},
        ),
        (
            pb.QueryTrendsRequest(
                series=[_series()],
                time_zone="Mars/Olympus_Mons",
                period=9,  # type: ignore[arg-type]
                breakdown=analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY),
                population=analytics_pb2.Population(segments=["not a segment"]),
                time_range=_RANGE,
            ),
            {"time_zone", "period", "breakdown.property", "population.segments[0]"},
        ),
    ],
)
def test_query_trends_refuses_invalid_requests(
    journeys: Journeys, request_: pb.QueryTrendsRequest, fields: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryTrends(request_, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == fields
