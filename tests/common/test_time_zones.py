"""Time zones named by callers and events (wayline.common.time_zones)."""

from __future__ import annotations

import zoneinfo

import pytest

from wayline.common.time_zones import iana_zones, load_zone


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
