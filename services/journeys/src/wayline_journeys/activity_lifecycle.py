"""The activity lifecycle (growth accounting): each period's persons by how their activity changed from the
period before, as PostHog's Lifecycle and Adobe's active growth chart sort them. No protobuf, no SQL.

A person is active in a period when they performed a matching event in it. Of a period's active persons:
- new: their first matching event ever (in all of the tenant's history) fell in the period;
- returning: they were active in the period before too;
- resurrecting: they were not, but were active earlier;
and dormant are the persons active in the period before and not in this one.

The query is a TrendQuery whose series measure nothing (`TrendMath.TOTAL`, no breakdown): trends.py lists
the periods, store/activity_lifecycle.py sorts each person's periods, and this module lays the counts out per
series and period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from wayline_journeys.trends import TrendQuery, dated_periods

__all__ = [
    "ActivityLifecycleReadModel",
    "ActivityStatus",
    "LifecycleCell",
    "LifecyclePersonsPage",
    "LifecyclePoint",
    "LifecycleResult",
    "lifecycle_results",
]


class ActivityStatus(Enum):
    NEW = 1
    RETURNING = 2
    RESURRECTING = 3
    DORMANT = 4


@dataclass(frozen=True)
class LifecycleCell:
    """A store row: `persons` persons of series `series_index` had `status` in the range's period
    `period` (0 for the first)."""

    series_index: int
    period: int
    status: ActivityStatus
    persons: int


@dataclass(frozen=True)
class LifecyclePoint:
    period_start: datetime
    new: int
    returning: int
    resurrecting: int
    dormant: int
    complete: bool


@dataclass(frozen=True)
class LifecycleResult:
    series_index: int
    label: str
    points: tuple[LifecyclePoint, ...]


@dataclass(frozen=True)
class LifecyclePersonsPage:
    """Which persons of a lifecycle to list: those of series `series_index` with `status` in the range's
    period `period` (0 for the first), after `after` in ascending order, `limit` at most."""

    series_index: int
    period: int
    status: ActivityStatus
    after: str
    limit: int


class ActivityLifecycleReadModel(Protocol):
    def activity_lifecycle(self, query: TrendQuery) -> list[LifecycleCell]:
        """The persons of every series by period of the range and status; no cell for a count of none."""
        ...

    def persons(self, query: TrendQuery, page: LifecyclePersonsPage) -> list[str]:
        """The ids of the persons `page` names, in ascending order."""
        ...


def lifecycle_results(
    cells: Sequence[LifecycleCell], query: TrendQuery, now: datetime
) -> list[LifecycleResult]:
    """One result per series (also without events), one point per period of the range, oldest first."""
    _, instants, complete = dated_periods(query, now)
    counts: dict[tuple[int, int, ActivityStatus], int] = {}
    for c in cells:
        at = (c.series_index, c.period, c.status)
        counts[at] = counts.get(at, 0) + c.persons
    results = []
    for index, series in enumerate(query.series):

        def of(period: int, status: ActivityStatus, index: int = index) -> int:
            return counts.get((index, period, status), 0)

        points = tuple(
            LifecyclePoint(
                start,
                of(n, ActivityStatus.NEW),
                of(n, ActivityStatus.RETURNING),
                of(n, ActivityStatus.RESURRECTING),
                of(n, ActivityStatus.DORMANT),
                done,
            )
            for n, (start, done) in enumerate(zip(instants, complete, strict=True))
        )
        results.append(LifecycleResult(index, series.label, points))
    return results
