"""Stickiness: of the persons who performed a series' events in a range, how many did so in exactly 1, 2, …
of its periods, as PostHog's Stickiness and Amplitude's stickiness count them. No protobuf, no SQL.

The query is a TrendQuery whose series measure nothing (`TrendMath.TOTAL`): trends.py lists the periods,
store/stickiness.py counts each person's active periods, and this module lays the counts out per series and
breakdown value, one entry per period of the range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wayline_journeys.analytics import BreakdownDimension, SeriesKey
from wayline_journeys.trends import TrendQuery, trend_periods

__all__ = ["StickinessCell", "StickinessReadModel", "StickinessResult", "stickiness_results"]


@dataclass(frozen=True)
class StickinessCell:
    """A store row: `persons` persons performed a matching event of series `series_index` with breakdown
    value `key` in exactly `periods` of the range's periods."""

    series_index: int
    key: SeriesKey
    periods: int
    persons: int


@dataclass(frozen=True)
class StickinessResult:
    series_index: int
    label: str
    key: SeriesKey
    persons: tuple[int, ...]  # persons[k]: active in exactly k + 1 periods
    total: int


class StickinessReadModel(Protocol):
    def stickiness(self, query: TrendQuery) -> list[StickinessCell]:
        """The persons of every series and breakdown value (breakdown limit applied) by how many of the
        range's periods they were active in; no cell for a count nobody has."""
        ...


def stickiness_results(cells: Sequence[StickinessCell], query: TrendQuery) -> list[StickinessResult]:
    """One result per series and breakdown value holding a person (per series without breakdown, even
    empty), in series order and by value from the most persons (over every series) to `other`."""
    periods = len(trend_periods(query))
    counts: dict[tuple[int, SeriesKey], list[int]] = {}
    weight: dict[SeriesKey, int] = defaultdict(int)
    for c in cells:
        counts.setdefault((c.series_index, c.key), [0] * periods)[c.periods - 1] += c.persons
        weight[c.key] += c.persons
    keys = sorted(weight, key=lambda k: (k.other, -weight[k], k.value, k.missing))
    if query.breakdown.dimension is BreakdownDimension.NONE:
        keys = [SeriesKey()]
    results = []
    for index, series in enumerate(query.series):
        for key in keys:
            found = counts.get((index, key))
            if found is None and query.breakdown.dimension is not BreakdownDimension.NONE:
                continue
            persons = tuple(found or [0] * periods)
            results.append(StickinessResult(index, series.label, key, persons, sum(persons)))
    return results
