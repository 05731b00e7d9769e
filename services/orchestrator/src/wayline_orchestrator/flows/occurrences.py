"""When a schedule trigger's occurrences fall: a five-field cron expression read in an IANA time zone (the
syntax `values.cron_problem` accepts), or a fixed interval counted from an anchor, both bounded by a start
and an end. Pure: times in microseconds since the epoch in, the same out.

Cron follows Vixie cron: day of month and day of week both restricted (neither starts with `*`) match when
either does; 7 is Sunday as 0 is. Daylight saving time moves wall clocks, not the schedule's meaning: a local
time that does not exist that day (the hour skipped in spring) has no occurrence, and a local time that
exists twice (the hour repeated in autumn) has one, at its first instant.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

__all__ = ["Cadence", "CronSchedule", "latest_due"]

_MICROS = datetime.timedelta(microseconds=1)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_SEARCH_DAYS = 366 * 29  # 29 Feb on a given weekday recurs within 28 years
_CATCH_UP_LIMIT = 1_000_000  # occurrences walked to find the latest missed one (a minutely cron: ~2 years)


def _values(text: str, low: int, high: int) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(n) for n in span.split("-", 1))
        else:
            first = int(span)
            last = high if step_text else first
        found.update(range(first, last + 1, step))
    return frozenset(found)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression (valid by `cron_problem`) in a time zone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday
    any_day: bool
    any_weekday: bool
    zone: zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, expression: str, time_zone: str = "") -> CronSchedule:
        fields = expression.split()
        parsed = [_values(text, low, high) for text, (low, high) in zip(fields, _RANGES, strict=True)]
        return cls(
            minutes=parsed[0],
            hours=parsed[1],
            days=parsed[2],
            months=parsed[3],
            weekdays=frozenset(d % 7 for d in parsed[4]),
            any_day=fields[2].startswith("*"),
            any_weekday=fields[4].startswith("*"),
            zone=zoneinfo.ZoneInfo(time_zone or "UTC"),
        )

    def _day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def _instant(self, day: datetime.date, hour: int, minute: int) -> int | None:
        """The first instant of a local time, in microseconds; None when that local time does not exist."""
        wall = datetime.datetime(day.year, day.month, day.day, hour, minute)
        first = wall.replace(tzinfo=self.zone, fold=0)
        utc = first.astimezone(datetime.UTC)
        if utc.astimezone(self.zone).replace(tzinfo=None) != wall:
            return None  # in the gap the clocks jump over
        return (utc - _EPOCH) // _MICROS

    def next_after(self, after_us: int) -> int | None:
        """The first occurrence strictly after `after_us`; None when there is none within 29 years."""
        start = (_EPOCH + after_us * _MICROS).astimezone(self.zone).date() - datetime.timedelta(days=1)
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        for offset in range(_SEARCH_DAYS):
            day = start + datetime.timedelta(days=offset)
            if not self._day_matches(day):
                continue
            for hour, minute in times:
                instant = self._instant(day, hour, minute)
                if instant is not None and instant > after_us:
                    return instant
        return None


@dataclass(frozen=True)
class Cadence:
    """A schedule trigger's occurrences: by `cron`, or every `interval_us` from `anchor_us`; none before
    `start_us` nor after `end_us` (None: unbounded)."""

    cron: CronSchedule | None
    interval_us: int
    anchor_us: int
    start_us: int | None = None
    end_us: int | None = None

    def _unbounded_after(self, after_us: int) -> int | None:
        if self.cron is not None:
            return self.cron.next_after(after_us)
        if after_us < self.anchor_us:
            return self.anchor_us
        return self.anchor_us + ((after_us - self.anchor_us) // self.interval_us + 1) * self.interval_us

    def next_after(self, after_us: int) -> int | None:
        """The first occurrence strictly after `after_us`, within the bounds; None when there is no more."""
        floor = after_us if self.start_us is None else max(after_us, self.start_us - 1)
        found = self._unbounded_after(floor)
        if found is None or (self.end_us is not None and found > self.end_us):
            return None
        return found


def latest_due(cadence: Cadence, due_us: int, now_us: int) -> int:
    """The latest occurrence at or before `now_us`, walking from `due_us` (an occurrence at or before
    `now_us`): after downtime, the missed occurrences collapse into the latest one."""
    latest = due_us
    if cadence.cron is None and now_us - due_us >= cadence.interval_us:
        whole = (
            (now_us - due_us) // cadence.interval_us * cadence.interval_us
        )  # straight there, not step by step
        latest = due_us + whole if cadence.end_us is None else min(due_us + whole, cadence.end_us)
        latest -= (latest - cadence.anchor_us) % cadence.interval_us
    for _ in range(_CATCH_UP_LIMIT):
        following = cadence.next_after(latest)
        if following is None or following > now_us:
            return latest
        latest = following
    return latest
