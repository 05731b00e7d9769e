"""The time-based split: fit on decisions before a cut-off, judge on decisions after it.

A random split would let the model see a customer's later behaviour while being scored on their earlier
decisions and would overstate every metric; splitting on decision time is how the model is used (trained on
the past, deciding the future). The last slice of the training window is held back for early stopping, so
the held-out rows never choose the number of trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wayline_ml.training_table import TrainingTable, TrainingTableError

__all__ = ["TimeSplit", "split_by_time"]


@dataclass(frozen=True, slots=True)
class TimeSplit:
    """Row ranges of a table sorted by time: [0, validation_start) fit, [validation_start, holdout_start)
    early stopping, [holdout_start, rows) held out."""

    validation_start: int
    holdout_start: int
    rows: int
    holdout_from_us: int  # the cut-off T: held-out rows have decision_time_us >= T

    def fit(self, table: TrainingTable) -> TrainingTable:
        return table.take(slice(0, self.validation_start))

    def validation(self, table: TrainingTable) -> TrainingTable:
        return table.take(slice(self.validation_start, self.holdout_start))

    def holdout(self, table: TrainingTable) -> TrainingTable:
        return table.take(slice(self.holdout_start, self.rows))


def split_by_time(
    table: TrainingTable, holdout_fraction: float = 0.2, validation_fraction: float = 0.1
) -> TimeSplit:
    """Cut at the decision time below which `1 - holdout_fraction` of the rows fall; rows at the cut-off
    time all go to the held-out side, so no timestamp is on both sides."""
    times = table.decision_time_us
    if len(times) < 10:
        raise TrainingTableError(f"a time split needs at least 10 rows, the table has {len(times)}")
    cut_time = int(times[int(len(times) * (1 - holdout_fraction))])
    holdout_start = int(np.searchsorted(times, cut_time, side="left"))
    validation_start = int(holdout_start * (1 - validation_fraction))
    if validation_start in {0, holdout_start} or holdout_start == len(times):
        raise TrainingTableError("the time split leaves an empty fit, validation or held-out slice")
    return TimeSplit(validation_start, holdout_start, len(times), cut_time)
