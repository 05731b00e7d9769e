"""When each person's sessions happen: a count from their activity, times spread from the day they first
appear (in the first half of the period) to its end, sorted per person."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wayline_ml.generator.config import GeneratorConfig
from wayline_ml.generator.people import People

__all__ = ["Schedule", "draw_schedule"]

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Schedule:
    """Sessions are numbered person by person, in time order: person p's k-th session is `offset[p] + k`."""

    count: NDArray[np.int64]
    """Sessions per person (at least one)."""
    offset: NDArray[np.int64]
    start_us: NDArray[np.int64]
    """Per session, when it starts."""

    def round(self, k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The persons with a k-th session, and those sessions."""
        persons = np.flatnonzero(self.count > k)
        return persons, self.offset[persons] + k


def draw_schedule(config: GeneratorConfig, people: People, rng: np.random.Generator) -> Schedule:
    n = len(people)
    span = config.days * DAY_US
    count = np.maximum(1, rng.poisson(people.activity * config.days)).astype(np.int64)
    offset = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    first_seen = rng.random(n) * 0.5 * span
    person = np.repeat(np.arange(n), count)
    start = first_seen[person] + rng.random(len(person)) * (span - first_seen[person])
    start = start[np.lexsort((start, person))]
    start[offset] = first_seen  # the first session is the day they first appear
    return Schedule(count=count, offset=offset, start_us=config.start_us + start.astype(np.int64))
