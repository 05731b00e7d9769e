"""Schedule occurrences: cron in a time zone (Vixie cron's day rule, Sunday as 0 or 7, daylight saving time:
a skipped local time has no occurrence, a repeated one has one), intervals from an anchor, the start and end
bounds, and the latest of several missed occurrences."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from wayline_orchestrator.flows.occurrences import Cadence, CronSchedule, latest_due

HOUR_US = 3_600_000_000


def us(text: str) -> int:
    """A UTC instant written `2026-03-02T10:00` in microseconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000


def utc(micros: int | None) -> str:
    assert micros is not None
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M")


def cron(expression: str, zone: str = "", start: str = "", end: str = "") -> Cadence:
    return Cadence(
        CronSchedule.parse(expression, zone),
        0,
        0,
        us(start) if start else None,
        us(end) if end else None,
    )


def following(cadence: Cadence, after: str, count: int) -> list[str]:
    found, at = [], us(after)
    for _ in range(count):
        at = cadence.next_after(at)  # type: ignore[assignment]
        found.append(utc(at))
    return found


def test_cron_every_monday_morning_in_paris_follows_the_zone_across_summer_time() -> None:
    mondays = cron("0 9 * * 1", "Europe/Paris")
    # 09:00 in Paris is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST, from 29 March 2026).
    assert following(mondays, "2026-03-17T12:00", 3) == [
        "2026-03-23T08:00",
        "2026-03-30T07:00",
        "2026-04-06T07:00",
    ]


def test_cron_next_after_is_strictly_after() -> None:
    hourly = cron("0 * * * *")
    assert utc(hourly.next_after(us("2026-03-02T10:00"))) == "2026-03-02T11:00"
    assert utc(hourly.next_after(us("2026-03-02T10:00") - 1)) == "2026-03-02T10:00"


def test_cron_a_local_time_skipped_by_the_spring_change_has_no_occurrence() -> None:
    # Paris skips 02:00-02:59 on 29 March 2026.
    nightly = cron("30 2 * * *", "Europe/Paris")
    assert following(nightly, "2026-03-27T12:00", 2) == ["2026-03-28T01:30", "2026-03-30T00:30"]


def test_cron_a_local_time_repeated_by_the_autumn_change_fires_once_at_its_first_instant() -> None:
    # Paris runs 02:00-02:59 twice on 25 October 2026: first in CEST (00:xx UTC), then in CET (01:xx UTC).
    nightly = cron("30 2 * * *", "Europe/Paris")
    assert following(nightly, "2026-10-24T12:00", 2) == ["2026-10-25T00:30", "2026-10-26T01:30"]
    # Asked during the second 02:xx, the repeated 02:30 does not come again.
    assert utc(nightly.next_after(us("2026-10-25T01:10"))) == "2026-10-26T01:30"


def test_cron_with_both_day_fields_restricted_matches_either() -> None:
    # The 13th of a month or a Friday (Vixie cron): Friday 6 March, Friday 13 March, then Friday 20 March.
    assert following(cron("0 0 13 * 5"), "2026-03-02T00:00", 3) == [
        "2026-03-06T00:00",
        "2026-03-13T00:00",
        "2026-03-20T00:00",
    ]
    # With one of them `*`, both must match: Friday the 13th only.
    assert following(cron("0 0 13 * */1"), "2026-03-02T00:00", 1) == ["2026-03-13T00:00"]


def test_cron_sunday_is_0_or_7() -> None:
    assert cron("0 8 * * 7").next_after(us("2026-03-02T00:00")) == cron("0 8 * * 0").next_after(
        us("2026-03-02T00:00")
    )
    assert following(cron("0 8 * * 7"), "2026-03-02T00:00", 1) == ["2026-03-08T08:00"]


def test_cron_lists_ranges_and_steps() -> None:
    assert following(cron("10-20/5,45 6 1 1,7 *"), "2026-03-02T00:00", 5) == [
        "2026-07-01T06:10",
        "2026-07-01T06:15",
        "2026-07-01T06:20",
        "2026-07-01T06:45",
        "2027-01-01T06:10",
    ]


def test_cron_a_29_february_waits_for_the_leap_year() -> None:
    assert following(cron("0 12 29 2 *"), "2026-03-02T00:00", 1) == ["2028-02-29T12:00"]


def _field_holds(text: str, value: int, low: int) -> bool:
    """A cron field read item by item, arithmetically (independently of the parser under test)."""
    for item in text.split(","):
        span, _, step = item.partition("/")
        first, last = (low, 10**6) if span == "*" else (int(span.split("-")[0]), int(span.split("-")[-1]))
        if step and span != "*" and "-" not in span:
            last = 10**6
        if first <= value <= last and (value - first) % int(step or 1) == 0:
            return True
    return False


def _brute_force(expression: str, after: int) -> int:
    """The next minute after `after` (UTC) that the expression holds for, by scanning minute by minute."""
    minute, hour, day, month, weekday = expression.split()
    moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=after)).replace(
        second=0, microsecond=0
    )
    moment += timedelta(minutes=1)
    while True:
        by_day = _field_holds(day, moment.day, 1)
        by_weekday = _field_holds(weekday, moment.isoweekday() % 7, 0) or _field_holds(
            weekday, 7 if moment.isoweekday() == 7 else -1, 0
        )
        either = not day.startswith("*") and not weekday.startswith("*")
        if not _field_holds(month, moment.month, 1) or not (
            (by_day or by_weekday) if either else (by_day and by_weekday)
        ):
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)  # the scan skips whole days
        elif not _field_holds(hour, moment.hour, 0):
            moment = (moment + timedelta(hours=1)).replace(minute=0)
        elif not _field_holds(minute, moment.minute, 0):
            moment += timedelta(minutes=1)
        else:
            return int(moment.timestamp()) * 1_000_000


@pytest.mark.parametrize(
    "expression",
    ["*/7 */5 * * *", "0 0 1,15 * 3", "5 4 * 2-3 1-5", "59 23 31 * *", "0 12 * * 7", "30 1/6 * * *"],
)
def test_cron_in_utc_agrees_with_a_minute_by_minute_scan(expression: str) -> None:
    rng = random.Random(expression)
    schedule = cron(expression)
    for _ in range(20):
        after = (
            us("2026-01-01T00:00") + rng.randrange(0, 365 * 24 * 60) * 60_000_000 + rng.randrange(60_000_000)
        )
        assert schedule.next_after(after) == _brute_force(expression, after)


def test_interval_counts_from_its_anchor_within_start_and_end() -> None:
    every_6h = Cadence(
        None, 6 * HOUR_US, us("2026-03-02T09:00"), us("2026-03-02T09:00"), us("2026-03-03T09:00")
    )
    assert following(every_6h, "2026-03-01T00:00", 5) == [
        "2026-03-02T09:00",
        "2026-03-02T15:00",
        "2026-03-02T21:00",
        "2026-03-03T03:00",
        "2026-03-03T09:00",
    ]
    assert every_6h.next_after(us("2026-03-03T09:00")) is None  # the end bound is the last


def test_cron_starts_no_earlier_than_its_start_and_ends_at_its_end() -> None:
    daily = cron("0 12 * * *", start="2026-03-05T00:00", end="2026-03-06T12:00")
    assert following(daily, "2026-03-02T00:00", 2) == ["2026-03-05T12:00", "2026-03-06T12:00"]
    assert daily.next_after(us("2026-03-06T12:00")) is None


def test_latest_due_collapses_missed_occurrences_into_the_latest() -> None:
    hourly = cron("0 * * * *")
    assert utc(latest_due(hourly, us("2026-03-02T10:00"), us("2026-03-02T15:30"))) == "2026-03-02T15:00"
    assert utc(latest_due(hourly, us("2026-03-02T10:00"), us("2026-03-02T10:59"))) == "2026-03-02T10:00"
    every_2h = Cadence(None, 2 * HOUR_US, us("2026-03-02T10:00"))
    assert utc(latest_due(every_2h, us("2026-03-02T10:00"), us("2026-03-09T09:00"))) == "2026-03-09T08:00"
    ending = Cadence(None, 2 * HOUR_US, us("2026-03-02T10:00"), None, us("2026-03-02T14:00"))
    assert utc(latest_due(ending, us("2026-03-02T10:00"), us("2026-03-09T09:00"))) == "2026-03-02T14:00"
