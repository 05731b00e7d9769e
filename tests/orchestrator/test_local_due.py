"""A flow's wait for a local time of day (`runs.local_due`), with hypothesis against a walk of the clocks
minute by minute: due on each local day at the first instant the clocks show the time or later, so across
daylight saving time a skipped time is due when the clocks jump over it (not an hour late) and a repeated one
once, at its first instant; in zones that change at 02:00, at midnight (Santiago), by half an hour (Lord
Howe) and at a quarter to the hour (Chatham)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from wayline.common.timestamps import to_micros
from wayline_orchestrator.flows.runtime.runs import local_due

MINUTE = 60_000_000
HOUR = 60 * MINUTE
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Paris",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Tokyo",
]
# The changes of 2026 (zone, local day, the hour of day they touch): a gap in spring, a repeat in autumn.
CHANGES = [
    ("America/New_York", date(2026, 3, 8), 2),
    ("America/New_York", date(2026, 11, 1), 1),
    ("Europe/Paris", date(2026, 3, 29), 2),
    ("Europe/Paris", date(2026, 10, 25), 2),
    ("America/Santiago", date(2026, 4, 4), 23),
    ("America/Santiago", date(2026, 9, 6), 0),
    ("Australia/Lord_Howe", date(2026, 4, 5), 1),
    ("Australia/Lord_Howe", date(2026, 10, 4), 2),
    ("Pacific/Chatham", date(2026, 4, 5), 3),  # at 03:45, back to 02:45
    ("Pacific/Chatham", date(2026, 9, 27), 2),  # at 02:45, on to 03:45
    ("Asia/Tokyo", date(2026, 3, 8), 2),
    ("UTC", date(2026, 3, 29), 2),
]


def _shown(instant: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant / 1e6, zone).replace(tzinfo=None)


def _walked(now: int, hour: int, minute: int, zone: ZoneInfo) -> int:
    """The answer by walking the clocks a minute at a time from two days before `now`: the first instant after
    `now` that is, on its local day, the first the clocks show hour:minute or later."""
    start = (now // MINUTE - 48 * 60) * MINUTE
    reached: set[date] = set()
    for step in range(5 * 24 * 60):
        instant = start + step * MINUTE
        shown = _shown(instant, zone)
        if shown.date() in reached or (shown.hour, shown.minute) < (hour, minute):
            continue
        reached.add(shown.date())
        if instant > now:
            return instant
    raise AssertionError("not reached in five days")


@settings(max_examples=examples(300), deadline=None)
@given(
    change=st.sampled_from(CHANGES),
    offset=st.integers(-30 * HOUR, 30 * HOUR),
    hour_shift=st.sampled_from([0, 0, 1, -1, 5, 12]),
    minute=st.sampled_from([0, 1, 15, 30, 45, 59]),
)
def test_a_local_time_is_due_when_the_clocks_first_reach_it_on_each_day(
    change: tuple[str, date, int], offset: int, hour_shift: int, minute: int
) -> None:
    zone, day, hour = change
    hour = (hour + hour_shift) % 24
    now = to_micros(datetime(day.year, day.month, day.day, 12, tzinfo=UTC)) + offset
    due = local_due(now, hour, minute, zone)
    assert due == _walked(now, hour, minute, ZoneInfo(zone))


def test_a_time_the_spring_change_skips_is_due_as_the_clocks_jump() -> None:
    new_york = ZoneInfo("America/New_York")
    midnight = to_micros(datetime(2026, 3, 8, 5, tzinfo=UTC))  # 00:00 EST; at 02:00 the clocks show 03:00 EDT
    due = local_due(midnight, 2, 30, "America/New_York")
    assert due == to_micros(datetime(2026, 3, 8, 7, tzinfo=UTC))
    assert _shown(due, new_york) == datetime(2026, 3, 8, 3, 0)


def test_a_time_the_autumn_change_repeats_is_due_once() -> None:
    first = to_micros(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT; 01:30 EST comes an hour later
    assert local_due(first - MINUTE, 1, 30, "America/New_York") == first
    tomorrow = to_micros(datetime(2026, 11, 2, 6, 30, tzinfo=UTC))  # 01:30 EST on the 2nd
    assert local_due(first, 1, 30, "America/New_York") == tomorrow
    assert local_due(first + HOUR, 1, 30, "America/New_York") == tomorrow


def test_a_waiting_person_is_due_within_a_day_and_a_change() -> None:
    now = to_micros(datetime(2026, 6, 1, 12, tzinfo=UTC))
    for zone in ZONES:
        for hour in range(24):
            assert 0 < local_due(now, hour, 0, zone) - now <= 25 * HOUR
    assert timedelta(microseconds=local_due(now, 12, 0, "UTC") - now) == timedelta(days=1)
