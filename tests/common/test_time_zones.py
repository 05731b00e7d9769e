"""Time zones named by callers and events (wayline.common.time_zones)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time

import pytest

from wayline.common.time_zones import first_showing, iana_zones, load_zone


@pytest.mark.parametrize("name", ["Europe/Paris", "America/New_York", "UTC", "Etc/GMT+5"])
def test_load_zone_opens_a_zone(name: str) -> None:
    assert load_zone(name) == zoneinfo.ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus",
        "America",
        "x" * 300,
        "a/" * 200,
        "Europe/../Paris",
        "/etc/passwd",
        "UTC\x00",
        "zone1970.tab",
    ],
)
def test_load_zone_answers_none_for_what_names_no_zone(name: str) -> None:
    """Whatever ZoneInfo raises: ZoneInfoNotFoundError, ValueError, or OSError (`America` is a directory of
    the database, 300 characters are too long for a file name)."""
    assert load_zone(name) is None


def test_iana_zones_hold_the_canonical_names_and_not_the_database_variants() -> None:
    zones = iana_zones()
    assert {"Europe/Paris", "America/New_York", "UTC"} <= zones
    # ZoneInfo opens these, but they are no IANA names (ClickHouse cannot load `right/UTC`).
    assert not {"localtime", "right/UTC", "posix/Europe/Paris", "America"} & zones


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # A time the clocks skip: reached as they jump (02:00 EST = 03:00 EDT), not at 02:30 EST (03:30 EDT).
        ("America/New_York", date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 7, tzinfo=UTC)),
        # Santiago skips midnight: the day begins at 01:00 -03.
        ("America/Santiago", date(2026, 9, 6), time(0, 0), datetime(2026, 9, 6, 4, tzinfo=UTC)),
        # Lord Howe skips half an hour: 02:15 is reached at 02:30 +11 (02:00 +10:30).
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
        # A time the clocks repeat: its first showing (EDT).
        ("America/New_York", date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("Asia/Kolkata", date(2026, 3, 8), time(2, 30), datetime(2026, 3, 7, 21, tzinfo=UTC)),
        # Nuuk's clocks go from 23:00 (-02:00) on 28 March 2026 to 00:00 (-01:00) on the 29th: the jump.
        ("America/Nuuk", date(2026, 3, 28), time(23, 30), datetime(2026, 3, 29, 1, tzinfo=UTC)),
        # Athens left local mean time (+01:34:52) for +02:00 at 00:01 on 28 July 1916: to the second.
        ("Europe/Athens", date(1916, 7, 28), time(0, 10), datetime(1916, 7, 27, 22, 26, 8, tzinfo=UTC)),
    ],
)
def test_first_showing_reads_a_time_of_day_as_the_clocks_show_it(
    zone: str, day: date, at: time, expected: datetime
) -> None:
    assert first_showing(day, at, zoneinfo.ZoneInfo(zone)) == expected


def test_first_showing_takes_a_fixed_offset() -> None:
    assert first_showing(date(2026, 3, 8), time(2, 30), UTC) == datetime(2026, 3, 8, 2, 30, tzinfo=UTC)
