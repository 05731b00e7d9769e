"""BG/NBD and Gamma-Gamma together: fit both on lifetime summaries, predict each customer's purchases, value
and probability of being alive over horizons.

Expected value over a horizon = expected purchases * expected value of a purchase (Gamma-Gamma's conditional
mean), the product the authors use, which assumes value independent of frequency. It is undiscounted: a
90- or 365-day horizon is short enough that a cost of capital changes it by a few percent, and a number in
the shop's currency is what segments and flow branches compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wayline_ml.clv import bgnbd, gamma_gamma
from wayline_ml.clv.bgnbd import BgNbdFit
from wayline_ml.clv.gamma_gamma import GammaGammaFit

__all__ = [
    "MODEL",
    "ClvModel",
    "ClvPredictions",
    "LifetimeSummaries",
    "fit",
    "frequency_value_correlation",
    "predict",
]

MODEL = "bgnbd-gamma-gamma/1"
"""The models and the version of this implementation, written beside every prediction."""

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LifetimeSummaries:
    """One entry per customer, in days: repeat purchase days, age at the last one, age now, and the mean value
    of the repeat purchase days (0 without one). `wayline.journeys.v1.CustomerLifetimeSummary` as arrays."""

    frequency: Floats
    recency: Floats
    t: Floats
    monetary: Floats

    def __post_init__(self) -> None:
        sizes = {len(self.frequency), len(self.recency), len(self.t), len(self.monetary)}
        if len(sizes) != 1:
            raise ValueError("frequency, recency, t and monetary must have one entry per customer")

    def __len__(self) -> int:
        return len(self.frequency)

    @classmethod
    def of(
        cls,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        t: npt.ArrayLike,
        monetary: npt.ArrayLike,
    ) -> LifetimeSummaries:
        def floats(values: npt.ArrayLike) -> Floats:
            return np.asarray(values, dtype=np.float64)

        return cls(floats(frequency), floats(recency), floats(t), floats(monetary))

    @property
    def repeat_buyers(self) -> int:
        return int(np.count_nonzero(self.frequency > 0))


@dataclass(frozen=True)
class ClvModel:
    transactions: BgNbdFit
    value: GammaGammaFit
    model: str = MODEL


@dataclass(frozen=True)
class ClvPredictions:
    probability_alive: Floats
    expected_order_value: Floats
    expected_purchases: dict[int, Floats] = field(default_factory=dict)
    """By horizon in days."""
    expected_value: dict[int, Floats] = field(default_factory=dict)
    """By horizon in days: expected purchases * expected order value, undiscounted."""


def fit(summaries: LifetimeSummaries) -> ClvModel:
    """Fit BG/NBD on every customer and Gamma-Gamma on the repeat buyers. ValueError when the customers
    cannot support a fit (none, or fewer than two repeat buyers with different values)."""
    if summaries.repeat_buyers < 2:
        raise ValueError(
            f"{len(summaries)} customers, {summaries.repeat_buyers} with a repeat purchase: at least two "
            "repeat buyers are needed to fit purchase and value models"
        )
    s = summaries
    return ClvModel(
        transactions=bgnbd.fit_bgnbd(s.frequency, s.recency, s.t),
        value=gamma_gamma.fit_gamma_gamma(s.frequency, s.monetary),
    )


def predict(
    model: ClvModel, summaries: LifetimeSummaries, horizons: Sequence[int] = (90, 365)
) -> ClvPredictions:
    """Each customer's predictions over each horizon (days after the end of their summary)."""
    s, params = summaries, model.transactions.params
    order_value = gamma_gamma.expected_average_value(model.value.params, s.frequency, s.monetary)
    purchases = {h: bgnbd.expected_purchases(params, h, s.frequency, s.recency, s.t) for h in horizons}
    return ClvPredictions(
        probability_alive=bgnbd.probability_alive(params, s.frequency, s.recency, s.t),
        expected_order_value=order_value,
        expected_purchases=purchases,
        expected_value={h: purchases[h] * order_value for h in horizons},
    )


def frequency_value_correlation(summaries: LifetimeSummaries) -> float:
    """Pearson's correlation of frequency and mean value among repeat buyers: Gamma-Gamma assumes none, so a
    large one (|rho| above ~0.3) says its value predictions are biased. NaN with fewer than two."""
    repeat = summaries.frequency > 0
    x, m = summaries.frequency[repeat], summaries.monetary[repeat]
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(m) == 0:
        return float("nan")
    return float(np.corrcoef(x, m)[0, 1])
