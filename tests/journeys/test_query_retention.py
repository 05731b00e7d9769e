"""QueryRetention over gRPC against the plain-Python reference: every period and type in a time zone with a
DST change, breakdowns with `other`, populations, person overrides, and validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.breadth import seeds
from tests.journeys.analytics_requests import set_breakdown, set_plan_population, set_time_range
from tests.journeys.conftest import Journeys, field_violations, new_person, override
from tests.journeys.event_log import Ev, to_pb
from tests.journeys.retention_reference import RetQuery, Table, reference_retention, retention_log
from tests.journeys.segments_support import (
    assert_segments_overlap,
    built_segments,
    count,
    delete_all_segments,
)
from wayline.common.errors import FieldViolation
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, to_datetime
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, retention_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.retention_converters import time_zone
from wayline_journeys.store import JourneyStore

START = datetime(2026, 2, 20, tzinfo=UTC)  # the log spans Europe/Paris' change to summer time (29 March)
PERIODS = {
    "day": retention_pb2.RETENTION_PERIOD_DAY,
    "week": retention_pb2.RETENTION_PERIOD_WEEK,
    "month": retention_pb2.RETENTION_PERIOD_MONTH,
}


def request_of(q: RetQuery) -> pb.QueryRetentionRequest:
    request = pb.QueryRetentionRequest(
        period=PERIODS[q.period],
        period_count=q.count,
        type=retention_pb2.RETENTION_TYPE_UNBOUNDED if q.unbounded else retention_pb2.RETENTION_TYPE_BOUNDED,
        time_zone=q.zone,
    )
    if q.cohort_name:
        request.cohort_event.event_name = q.cohort_name
    if q.return_name:
        request.return_event.event_name = q.return_name
    set_time_range(request.time_range, q.start, q.end)
    set_breakdown(request.breakdown, q.breakdown, q.limit, [name for name, _ in q.segments])
    set_plan_population(request.population, q.population_plan)
    return request


def _shift(local: date, period: str, n: int) -> date:
    if period == "day":
        return local + timedelta(days=n)
    if period == "week":
        return local + timedelta(days=7 * n)
    months = local.month - 1 + n
    return date(local.year + months // 12, months % 12 + 1, 1)


def expected_series(table: Table, q: RetQuery, now: datetime) -> dict[tuple[str, bool, bool], list[object]]:
    """The response's content as plain values: per series, its cohorts and average."""
    zone = ZoneInfo(q.zone)

    def starts(cohort: datetime, n: int) -> datetime:
        local = _shift(cohort.astimezone(zone).date(), q.period, n)
        return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)

    found: dict[tuple[str, bool, bool], list[object]] = {}
    for key, cohorts in table.items():
        rows: list[object] = []
        totals: dict[int, tuple[int, int, bool]] = {}
        for cohort, counts in sorted(cohorts.items()):
            values = []
            for n in range(q.count + 1):
                if starts(cohort, n) > now:
                    break
                complete = starts(cohort, n + 1) <= now
                retained = counts.retained[n]
                values.append((n, retained, round(retained / counts.size, 9), complete))
                r, size, done = totals.get(n, (0, 0, True))
                totals[n] = (r + retained, size + counts.size, done and complete)
            rows.append((cohort, counts.size, values))
        average = [(n, r, round(r / s, 9), c) for n, (r, s, c) in sorted(totals.items())]
        found[key] = [rows, average]
    return found


def actual_series(response: pb.QueryRetentionResponse) -> dict[tuple[str, bool, bool], list[object]]:
    def values(found: list[retention_pb2.RetentionValue]) -> list[tuple[int, int, float, bool]]:
        return [(v.period_index, v.retained_count, round(v.retained_rate, 9), v.complete) for v in found]

    return {
        (s.breakdown_value.value, s.breakdown_value.other, s.breakdown_value.missing): [
            [(to_datetime(c.period_start), c.cohort_size, values(list(c.values))) for c in s.cohorts],
            values(list(s.average)),
        ]
        for s in response.series
    }


def assert_matches(journeys: Journeys, log: list[Ev], q: RetQuery) -> None:
    before = datetime.now(UTC)
    response = journeys.stub.QueryRetention(request_of(q), metadata=journeys.metadata, timeout=30)
    after = datetime.now(UTC)
    table = reference_retention(log, q)
    if not table and not q.breakdown:
        table = {("", False, False): {}}
    got = actual_series(response)
    # A period may end between the call and now: either side of it is right.
    assert got in (expected_series(table, q, before), expected_series(table, q, after)), q
    sizes = [sum(c.cohort_size for c in s.cohorts) for s in response.series if not s.breakdown_value.other]
    assert sizes == sorted(sizes, reverse=True)


VARIANTS = [
    RetQuery(period="day", count=20, zone="Europe/Paris"),
    RetQuery(
        period="day",
        count=10,
        zone="Europe/Paris",
        unbounded=True,
        cohort_name="Signed Up",
        return_name="Purchased",
    ),
    RetQuery(period="week", zone="Europe/Paris", cohort_name="Signed Up", breakdown="channel", limit=2),
    RetQuery(
        period="week",
        zone="Europe/Paris",
        unbounded=True,
        return_name="Purchased",
        breakdown="properties.source",
    ),
    RetQuery(
        period="month",
        count=3,
        zone="Europe/Paris",
        start=START + timedelta(days=10),
        end=START + timedelta(days=50),
    ),
    RetQuery(
        period="month",
        count=4,
        zone="Europe/Paris",
        unbounded=True,
        breakdown="person.plan",
        population_plan="pro",
    ),
    RetQuery(
        period="week", zone="America/New_York", count=12, cohort_name="Purchased", return_name="Purchased"
    ),
]


@pytest.mark.parametrize("seed", seeds(11, 12))
def test_query_retention_matches_the_reference(journeys: Journeys, seed: int) -> None:
    log = retention_log(seed, START)
    journeys.write(*(to_pb(e) for e in log))
    for q in VARIANTS:
        assert reference_retention(log, q), q
        assert_matches(journeys, log, q)


def test_query_retention_dates_history_before_1970(journeys: Journeys) -> None:
    """Imported history across 1970's new year: ClickHouse's Date and its period numbers stop at 1970 (every
    earlier period was 1970's first), so the store dates periods in Date32 (ADR 87)."""
    start = datetime(1969, 11, 20, tzinfo=UTC)
    log = retention_log(13, start)
    journeys.write(*(to_pb(e) for e in log))
    for q in (
        RetQuery(period="day", count=20, zone="America/New_York"),
        RetQuery(period="week", zone="America/Los_Angeles", unbounded=True, breakdown="channel", limit=2),
        RetQuery(period="month", count=3, zone="Asia/Tokyo", start=start, end=start + timedelta(days=50)),
    ):
        table = reference_retention(log, q)
        assert any(cohort.year == 1969 for series in table.values() for cohort in series), q
        assert_matches(journeys, log, q)


def test_query_retention_dates_periods_in_the_time_zone_across_dst(journeys: Journeys) -> None:
    person = new_person()
    # 29 March 2026 22:30 UTC is 00:30 on 30 March in Paris, the first day of summer time (UTC+2).
    entry = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)
    journeys.write(
        to_pb(Ev(person, entry, "00000000-0000-0000-0000-0000000000d1", "track", "Signed Up", "web")),
        to_pb(
            Ev(
                person,
                datetime(2026, 3, 30, 21, 59, tzinfo=UTC),
                "00000000-0000-0000-0000-0000000000d2",
                "track",
                "Purchased",
                "web",
            )
        ),
        to_pb(
            Ev(
                person,
                datetime(2026, 3, 30, 22, 0, tzinfo=UTC),
                "00000000-0000-0000-0000-0000000000d3",
                "track",
                "Purchased",
                "web",
            )
        ),
    )
    request = pb.QueryRetentionRequest(
        period=retention_pb2.RETENTION_PERIOD_DAY,
        period_count=2,
        time_zone="Europe/Paris",
        return_event=analytics_pb2.EventMatcher(event_name="Purchased"),
    )
    cohort = (
        journeys.stub.QueryRetention(request, metadata=journeys.metadata, timeout=10).series[0].cohorts[0]
    )
    assert to_datetime(cohort.period_start) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert [(v.period_index, v.retained_count) for v in cohort.values] == [(0, 1), (1, 1), (2, 0)]
    request.time_zone = "UTC"  # the entry is on 29 March in UTC; both returns on the 30th
    cohort = (
        journeys.stub.QueryRetention(request, metadata=journeys.metadata, timeout=10).series[0].cohorts[0]
    )
    assert to_datetime(cohort.period_start) == datetime(2026, 3, 29, tzinfo=UTC)
    assert [(v.period_index, v.retained_count) for v in cohort.values] == [(0, 0), (1, 1), (2, 0)]


def test_query_retention_omits_periods_not_started_and_marks_the_current_one(journeys: Journeys) -> None:
    person, today = new_person(), datetime.now(UTC).date()
    yesterday = datetime(today.year, today.month, today.day, 1, tzinfo=UTC) - timedelta(days=1)
    journeys.write(to_pb(Ev(person, yesterday, str(new_person()), "track", "Signed Up", "web")))
    request = pb.QueryRetentionRequest(period=retention_pb2.RETENTION_PERIOD_DAY, period_count=5)
    cohort = (
        journeys.stub.QueryRetention(request, metadata=journeys.metadata, timeout=10).series[0].cohorts[0]
    )
    if datetime.now(UTC).date() == today:  # (unless the day ended during the call)
        # Period 0 (yesterday) is over, period 1 (today) has started and is not complete, the rest are
        # left out.
        assert [(v.period_index, v.retained_count, v.complete) for v in cohort.values] == [
            (0, 1, True),
            (1, 0, False),
        ]


def test_query_retention_follows_a_merge(journeys: Journeys) -> None:
    first, second = new_person(), new_person()
    at = datetime(2026, 5, 4, 10, tzinfo=UTC)
    log = [
        Ev(first, at, "00000000-0000-0000-0000-0000000000e1", "track", "Signed Up", "web"),
        Ev(
            second,
            at + timedelta(days=8),
            "00000000-0000-0000-0000-0000000000e2",
            "track",
            "Purchased",
            "mobile_app",
        ),
    ]
    journeys.write(*(to_pb(e) for e in log))
    q = RetQuery(period="week", count=2)
    assert_matches(journeys, log, q)
    before = journeys.stub.QueryRetention(request_of(q), metadata=journeys.metadata, timeout=10).series[0]
    assert [c.cohort_size for c in before.cohorts] == [1, 1]
    journeys.apply(override(second, first, 1))
    after = journeys.stub.QueryRetention(request_of(q), metadata=journeys.metadata, timeout=10).series[0]
    assert [c.cohort_size for c in after.cohorts] == [1]
    assert [v.retained_count for v in after.cohorts[0].values] == [1, 1, 0]
    assert_matches(journeys, [replace(e, person=first) for e in log], q)


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.QueryRetentionRequest(period_count=101), {"period_count"}),
        (pb.QueryRetentionRequest(period_count=-1), {"period_count"}),
        (pb.QueryRetentionRequest(time_zone="Mars/Olympus_Mons"), {"time_zone"}),
        (pb.QueryRetentionRequest(time_zone="../../etc/passwd", period=7), {"time_zone", "period"}),  # type: ignore[arg-type]
        # Files of the tz database that Python opens but no IANA zone names (ClickHouse cannot load right/).
        (pb.QueryRetentionRequest(time_zone="right/UTC"), {"time_zone"}),
        (pb.QueryRetentionRequest(time_zone="posix/Europe/Paris"), {"time_zone"}),
        (pb.QueryRetentionRequest(time_zone="localtime"), {"time_zone"}),
        (pb.QueryRetentionRequest(type=9), {"type"}),  # type: ignore[arg-type]
        (
            pb.QueryRetentionRequest(
                return_event=analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_UNSPECIFIED]),
                breakdown=analytics_pb2.Breakdown(dimension=analytics_pb2.BREAKDOWN_DIMENSION_PROPERTY),
            ),
            {"return_event.channels", "breakdown.property"},
        ),
        (  # were INTERNAL: enum numbers the contract does not define, a time past year 9999
            pb.QueryRetentionRequest(
                cohort_event=analytics_pb2.EventMatcher(channels=[99], event_type=42),  # type: ignore[list-item, arg-type]
                time_range=event_pb2.TimeRange(start=Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1)),
            ),
            {"cohort_event.channels", "cohort_event.event_type", "time_range.start"},
        ),
    ],
)
def test_query_retention_refuses_invalid_requests(
    journeys: Journeys, request_: pb.QueryRetentionRequest, fields: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys.stub.QueryRetention(request_, metadata=journeys.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == fields


def test_every_time_zone_accepted_is_one_clickhouse_loads(store: JourneyStore) -> None:
    """The converter accepts a zone only if the store can use it (QueryRetention and
    CountSegmentMembershipChanges share it): every zone Python's database lists, and the other files of that
    database Python would open (leap-second `right/` clocks, which ClickHouse cannot load, and the `posix/`
    copies), checked against the zones of the real ClickHouse."""
    loaded = {r[0] for r in store.client.query("SELECT time_zone FROM system.time_zones").result_rows}
    candidates = available_timezones() | {
        "right/UTC",
        "right/Europe/Paris",
        "posix/Europe/Paris",
        "localtime",
    }
    accepted = set()
    for name in candidates:
        violations: list[FieldViolation] = []
        time_zone(name, "time_zone", violations)
        if not violations:
            accepted.add(name)
    assert "Europe/Paris" in accepted
    assert accepted - loaded == set()


def test_query_retention_breaks_down_by_segment_membership(journeys: Journeys) -> None:
    """A person's cohort entry counts in each segment they are in, and in the `missing` series when in none;
    every listed segment keeps its series whatever the limit."""
    log = retention_log(13, START)
    journeys.write(*(to_pb(e) for e in log))
    try:
        segments = built_segments(
            journeys,
            ("bought-twice", count("Purchased", 2)),
            ("viewed", count("Product Viewed")),
            ("never", count("Never Done")),
        )
        assert_segments_overlap(segments, {e.person for e in log})
        segments += (("segments/no-such-segment", frozenset()),)
        for q in (
            RetQuery(period="week", zone="Europe/Paris", breakdown="segment", segments=segments, limit=1),
            RetQuery(
                period="day",
                count=10,
                unbounded=True,
                cohort_name="Signed Up",
                return_name="Purchased",
                breakdown="segment",
                segments=segments,
            ),
        ):
            assert ("segments/viewed", False, False) in reference_retention(log, q), q
            assert_matches(journeys, log, q)
    finally:
        delete_all_segments(journeys)


def test_query_retention_without_events_returns_one_empty_series(journeys: Journeys) -> None:
    response = journeys.stub.QueryRetention(
        pb.QueryRetentionRequest(), metadata=journeys.metadata, timeout=10
    )
    assert len(response.series) == 1
    assert list(response.series[0].cohorts) == []
