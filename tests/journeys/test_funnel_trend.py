"""QueryFunnel's trend over gRPC against the plain-Python reference: each period's point is the reference
funnel asked with that period (within the range) as its time range, counted into the response's series;
periods begin at local midnight in the trend's zone; the points still converting are marked; the refusals."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.breadth import seeds
from tests.journeys.conftest import Journeys
from tests.journeys.event_log import Ev, to_pb
from tests.journeys.funnel_reference import Match, Spec, Step, Unit, expected, units
from tests.journeys.segments_support import delete_all_segments
from tests.journeys.test_query_funnel import (
    DAY,
    HOUR,
    T0,
    _check,
    _log,
    _query,
    _refused,
    _request,
    _segments,
    _spec,
)
from wayline.journeys.v1 import funnel_pb2, retention_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


def _us(at: datetime) -> int:
    return round(at.timestamp() * 1_000_000)


def _next_period(day: date, period: str) -> date:
    if period == "week":
        return day + timedelta(days=7)
    if period == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def _local_periods(start_us: int, end_us: int, zone: ZoneInfo, period: str = "day") -> list[tuple[int, int]]:
    """[begin, end) in µs of each local calendar day (or week from Monday, or month) overlapping
    [start_us, end_us)."""
    day = datetime.fromtimestamp(start_us / 1e6, zone).date()
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    found: list[tuple[int, int]] = []
    while True:
        begin = _us(datetime.combine(day, time(0), tzinfo=zone))
        if begin >= end_us:
            return found
        day = _next_period(day, period)
        found.append((begin, _us(datetime.combine(day, time(0), tzinfo=zone))))


def _series_counts(
    found: list[Unit], keys: list[tuple[str, bool, bool]], steps: int
) -> dict[tuple[str, bool, bool], list[int]]:
    """How many units of each of the response's series reached each step; a value that is none of the
    series counts in `other` (when the response has it)."""
    kept = {(value, missing) for value, other, missing in keys if not other}
    counts = {key: [0] * steps for key in keys}
    for unit in found:
        key = (unit.value[0], False, unit.value[1]) if unit.value in kept else ("", True, False)
        if key in counts:
            for k in range(unit.level + 1):
                counts[key][k] += 1
    return counts


def _check_trend(
    spec: Spec,
    log: list[Ev],
    response: pb.QueryFunnelResponse,
    zone: ZoneInfo,
    context: str,
    period: str = "day",
) -> int:
    """Checks each series' points (days, weeks or months) against the reference; returns the
    persons-periods counted."""
    assert spec.start_us is not None
    assert spec.end_us is not None
    days = _local_periods(spec.start_us, spec.end_us, zone, period)
    keys = [
        (s.breakdown_value.value, s.breakdown_value.other, s.breakdown_value.missing) for s in response.series
    ]
    wanted = []
    for begin, end in days:
        narrowed = replace(spec, start_us=max(begin, spec.start_us), end_us=min(end, spec.end_us))
        wanted.append(_series_counts(units(narrowed, log), keys, len(spec.steps)))
    for series, key in zip(response.series, keys, strict=True):
        where = f"{context} series {key}"
        assert [p.period_start.ToMicroseconds() for p in series.trend] == [b for b, _ in days], where
        assert [list(p.step_counts) for p in series.trend] == [w[key] for w in wanted], where
        for point in series.trend:
            counts = list(point.step_counts)
            assert point.conversion_rate == pytest.approx(counts[-1] / counts[0] if counts[0] else 0.0)
            assert point.complete, where  # September 2026, long before the tests run
    return sum(w[key][0] for w in wanted for key in keys)


@pytest.mark.parametrize("seed", seeds(3, 4))
def test_the_trend_is_the_funnel_of_each_period(journeys: Journeys, seed: int) -> None:
    """Every order (the linear walks and the general one with gaps and exclusions), breakdowns with each
    attribution, days in a zone whose midnight is not UTC's."""
    log = _log(seed)
    journeys.write(*(to_pb(e) for e in log))
    rng = random.Random(2000 + seed)
    zone_name = ("America/New_York", "Asia/Kolkata")[seed % 2]
    zone = ZoneInfo(zone_name)
    entered = 0
    for round_ in range(12):
        spec = _spec(rng, ("ordered", "strict", "any")[round_ % 3])
        start = _us(T0 - timedelta(hours=rng.randint(0, 12)))
        spec = replace(spec, start_us=start, end_us=start + rng.choice((2 * DAY, 3 * DAY + 7 * HOUR)))
        request = _request(spec)
        request.trend.CopyFrom(
            funnel_pb2.FunnelTrend(period=retention_pb2.RETENTION_PERIOD_DAY, time_zone=zone_name)
        )
        context = f"seed {seed} round {round_}: {spec}"
        response = _query(journeys, request)
        _check(spec, response, expected(spec, units(spec, log)), context)
        entered += _check_trend(spec, log, response, zone, context)
    assert entered > 50  # the rounds counted persons, not only empty periods


def test_history_before_1970_is_dated_in_its_own_periods(journeys: Journeys) -> None:
    """Imported history across 1970's new year, in a zone west of UTC: ClickHouse's Date starts in 1970, so
    the store dates periods in Date32 (ADR 87); each day's point is still the reference funnel of that day."""
    shift = datetime(1969, 12, 30, 20, 0, tzinfo=UTC) - T0
    log = [replace(e, at=e.at + shift) for e in _log(6)]
    journeys.write(*(to_pb(e) for e in log))
    rng = random.Random(2006)
    entered = 0
    periods = {
        "day": retention_pb2.RETENTION_PERIOD_DAY,
        "week": retention_pb2.RETENTION_PERIOD_WEEK,
        "month": retention_pb2.RETENTION_PERIOD_MONTH,
    }
    for round_ in range(9):
        spec = _spec(rng, ("ordered", "strict", "any")[round_ % 3])
        start = _us(T0 + shift - timedelta(hours=rng.randint(0, 12)))
        spec = replace(spec, start_us=start, end_us=start + 3 * DAY + 7 * HOUR)
        period = ("day", "week", "month")[round_ // 3]
        request = _request(spec)
        request.trend.CopyFrom(funnel_pb2.FunnelTrend(period=periods[period], time_zone="America/New_York"))
        context = f"round {round_} by {period}: {spec}"
        response = _query(journeys, request)
        _check(spec, response, expected(spec, units(spec, log)), context)
        entered += _check_trend(spec, log, response, ZoneInfo("America/New_York"), context, period)
    assert entered > 20
    # By week and by month, the periods holding 1969's last days begin in 1969.
    request = _a_then_b(datetime(1969, 12, 1, tzinfo=UTC), 62, 7 * DAY)
    request.trend.time_zone = "America/New_York"
    for name, first, count in (("week", date(1969, 11, 24), 10), ("month", date(1969, 11, 1), 3)):
        request.trend.period = periods[name]
        (series,) = _query(journeys, request).series
        starts = [
            datetime.fromtimestamp(p.period_start.seconds, ZoneInfo("America/New_York")) for p in series.trend
        ]
        assert (starts[0].date(), len(starts)) == (first, count)
        assert all(s.time() == time(0) for s in starts)


def test_the_trend_by_segment_counts_each_membership(journeys: Journeys) -> None:
    """A breakdown by segment: each period's point counts a person in each listed segment they are in, and
    those in none in `missing`, as the funnel's series do."""
    log = _log(5)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = _segments(journeys, log)
        rng = random.Random(2005)
        for round_ in range(6):
            spec = _spec(rng, ("ordered", "strict", "any")[round_ % 3])
            start = _us(T0)
            spec = replace(
                spec, start_us=start, end_us=start + 3 * DAY, breakdown="segment", segments=segments
            )
            request = _request(spec)
            request.trend.period = retention_pb2.RETENTION_PERIOD_DAY
            context = f"round {round_}: {spec}"
            response = _query(journeys, request)
            _check(spec, response, expected(spec, units(spec, log)), context)
            _check_trend(spec, log, response, ZoneInfo("UTC"), context)
    finally:
        delete_all_segments(journeys)


def _visits(*visits: tuple[str, datetime, str]) -> list[Ev]:
    """Web track events of (person, time, name), with ids in order of the arguments."""
    return [
        Ev(person, at, str(uuid.UUID(int=i + 1)), "track", name, "web")
        for i, (person, at, name) in enumerate(visits)
    ]


def _a_then_b(start: datetime, days: int, window_us: int) -> pb.QueryFunnelRequest:
    """The funnel A → B over `days` from `start`, with a trend (the caller sets its period)."""
    spec = Spec(
        steps=(Step((Match("A"),)), Step((Match("B"),))),
        window_us=window_us,
        start_us=_us(start),
        end_us=_us(start + timedelta(days=days)),
    )
    request = _request(spec)
    request.trend.SetInParent()
    return request


def _weeks(series: funnel_pb2.FunnelSeries) -> list[tuple[date, list[int]]]:
    return [(p.period_start.ToDatetime(UTC).date(), list(p.step_counts)) for p in series.trend]


def test_a_person_counts_in_each_period_they_started_in(journeys: Journeys) -> None:
    """A person who starts on two days counts on both (the whole range counts them once), each day with
    its own best attempt; weeks in UTC start on Monday."""
    monday = datetime(2026, 8, 31, tzinfo=UTC)
    hour = timedelta(hours=1)
    journeys.write(
        *(
            to_pb(e)
            for e in _visits(
                ("p1", monday + 33 * hour, "A"),
                ("p1", monday + 34 * hour, "B"),
                ("p1", monday + 57 * hour, "A"),
                ("p2", monday + 201 * hour, "A"),
            )
        )
    )
    request = _a_then_b(monday, 14, DAY)
    request.trend.period = retention_pb2.RETENTION_PERIOD_DAY
    (series,) = _query(journeys, request).series
    assert [s.count for s in series.steps] == [2, 1]
    by_day = dict(_weeks(series))
    assert len(by_day) == 14
    assert by_day[date(2026, 9, 1)] == [1, 1]
    assert by_day[date(2026, 9, 2)] == [1, 0]
    assert by_day[date(2026, 9, 8)] == [1, 0]
    assert sum(c[0] for c in by_day.values()) == 3
    request.trend.period = retention_pb2.RETENTION_PERIOD_UNSPECIFIED  # weeks
    (series,) = _query(journeys, request).series
    assert _weeks(series) == [(date(2026, 8, 31), [1, 1]), (date(2026, 9, 7), [1, 0])]
    assert [p.conversion_rate for p in series.trend] == [1.0, 0.0]


def test_the_first_weeks_of_the_calendar(journeys: Journeys) -> None:
    """A trend from the calendar's first Monday (1970-01-05): the window reaches back before 1970, where
    ClickHouse's Date stops, and the week's entrant still counts in it."""
    monday = datetime(1970, 1, 5, tzinfo=UTC)
    hour = timedelta(hours=1)
    journeys.write(
        *(to_pb(e) for e in _visits(("p1", monday + 33 * hour, "A"), ("p1", monday + 34 * hour, "B")))
    )
    request = _a_then_b(monday, 14, 7 * DAY)
    request.trend.period = retention_pb2.RETENTION_PERIOD_WEEK
    (series,) = _query(journeys, request).series
    assert _weeks(series) == [(date(1970, 1, 5), [1, 1]), (date(1970, 1, 12), [0, 0])]


def test_points_still_converting_are_not_complete(journeys: Journeys) -> None:
    now = datetime.now(UTC)
    spec = Spec(steps=(Step((Match("A"),)), Step((Match("B"),))), window_us=DAY)
    request = _request(spec)
    request.time_range.start.FromDatetime(now - timedelta(days=4))
    request.trend.period = retention_pb2.RETENTION_PERIOD_DAY
    (series,) = _query(journeys, request).series
    assert len(series.trend) == 5  # the days from four days ago to today
    flags = [p.complete for p in series.trend]
    # A day is complete once it and the one-day window have passed: all but the last two.
    assert flags == [True] * (len(flags) - 2) + [False, False]
    assert all(list(p.step_counts) == [0, 0] and p.conversion_rate == 0.0 for p in series.trend)


def test_a_trend_is_refused_without_a_start_or_over_too_many_periods(journeys: Journeys) -> None:
    two = (Step((Match("A"),)), Step((Match("B"),)))
    request = _request(Spec(steps=two))
    request.trend.time_zone = "Mars/Olympus"
    request.trend.period = 9  # type: ignore[assignment]
    assert _refused(journeys, request) == {
        "trend.period": "INVALID",
        "trend.time_zone": "INVALID",
        "time_range.start": "REQUIRED",
    }
    request = _request(Spec(steps=two, start_us=_us(T0), end_us=_us(T0 + timedelta(days=401))))
    request.trend.period = retention_pb2.RETENTION_PERIOD_DAY
    assert _refused(journeys, request) == {"time_range": "OUT_OF_RANGE"}
    request.trend.period = retention_pb2.RETENTION_PERIOD_WEEK
    assert len(_query(journeys, request).series[0].trend) == 58
    # Were INTERNAL in CountSegmentMembershipChanges, which dates periods the same way: year 1 west of UTC.
    request = _request(Spec(steps=two))
    request.time_range.start.FromDatetime(datetime(1, 1, 1, tzinfo=UTC))
    request.time_range.end.FromDatetime(datetime(1, 1, 20, tzinfo=UTC))
    request.trend.time_zone = "America/New_York"
    assert _refused(journeys, request) == {"time_range": "OUT_OF_RANGE"}
    request = _request(Spec(steps=two))
    request.time_range.start.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    request.trend.SetInParent()
    assert _refused(journeys, request) == {"time_range.start": "INVALID_RANGE"}
