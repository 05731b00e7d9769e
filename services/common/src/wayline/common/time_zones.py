"""Time zones that callers and events name: loaded without a name that is no zone failing the call.

`zoneinfo.ZoneInfo` refuses a name that is no zone with ZoneInfoNotFoundError or ValueError, but also with
OSError when the name reaches the file system as something else than a zone file: a directory of the tz
database (`America`, IsADirectoryError) or a name longer than the system allows (ENAMETOOLONG). Caught
nowhere, those became INTERNAL answers and failed deliveries of events that carry such a zone.

`first_showing` reads a local time of day the way a person's clocks do across daylight saving time.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["first_showing", "iana_zones", "load_zone"]

_MICROSECOND = timedelta(microseconds=1)


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


def first_showing(day: date, at: time, zone: tzinfo) -> datetime:
    """The first instant of local `day` at which the clocks of `zone` show `at` or later, in UTC. A time they
    skip that day (the hour skipped in spring) is reached as they jump over it, not an hour later as reading
    it with the offset before the jump gives (when the jump crosses midnight, as Nuuk's from 23:00 to 00:00
    does, that instant is on the next day); one they show twice (the hour repeated in autumn), at its first
    showing. Flows' waits for a local time, the end of quiet hours and the start of a calendar day all mean
    this."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=1 reads the wall time with the offset after the jump (an instant before it), fold=0 with
    # the one before (an instant after it). The jump lies between, found to the microsecond (local mean time's
    # offsets have seconds): about 32 halvings of an hour's gap, and only for a time the clocks skip.
    before, after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    while after - before > _MICROSECOND:
        middle = before + (after - before) // 2
        shown = middle.astimezone(zone).replace(tzinfo=None)
        before, after = (before, middle) if shown >= wall else (middle, after)
    return after
