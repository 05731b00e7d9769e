"""The calendar of periods in ClickHouse, shared by retention and the segment change counts: a period's number
and the local date it begins on, both in the time zone given as the second argument (days; weeks starting on
Monday; months), as retention.period_start dates them in Python."""

from __future__ import annotations

from wayline_journeys.retention import RetentionPeriod

__all__ = ["PERIOD_NUMBER", "PERIOD_START"]

PERIOD_NUMBER = {
    RetentionPeriod.DAY: "toRelativeDayNum",
    RetentionPeriod.WEEK: "toRelativeWeekNum",
    RetentionPeriod.MONTH: "toRelativeMonthNum",
}
PERIOD_START = {
    RetentionPeriod.DAY: "toDate",
    RetentionPeriod.WEEK: "toMonday",
    RetentionPeriod.MONTH: "toStartOfMonth",
}
