"""Time zones that callers and events name: loaded without a name that is no zone failing the call.

`zoneinfo.ZoneInfo` refuses a name that is no zone with ZoneInfoNotFoundError or ValueError, but also with
OSError when the name reaches the file system as something else than a zone file: a directory of the tz
database (`America`, IsADirectoryError) or a name longer than the system allows (ENAMETOOLONG). Caught
nowhere, those became INTERNAL answers and failed deliveries of events that carry such a zone.
"""

from __future__ import annotations

import functools
import zoneinfo

__all__ = ["iana_zones", "load_zone"]


def load_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone `name` names, or None when it names none (whatever the reason ZoneInfo gives)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.cache
def iana_zones() -> frozenset[str]:
    """The zone names of the tz database, read once per process (a walk of its files, about 20 ms).
    Stricter than `load_zone`: ZoneInfo also opens any zone file under the database's directory, such as
    `right/UTC` (leap-second clocks, which ClickHouse cannot load), the `posix/` copies and `localtime` (the
    host's own zone), which are no IANA names; available_timezones() leaves those out."""
    return frozenset(zoneinfo.available_timezones() - {"localtime"})
